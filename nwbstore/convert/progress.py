"""The conversion progress bar: sized from the destination shapes, exact at the end.

Every dataset counts its destination size (``prod(destination shape) * itemsize``): the bar's
total is the sum over the datasets the conversion will copy, datasets a resumed run already
finished start the bar (``initial``), and each dataset tops the bar up to its own size when
it is done, whatever its chunks reported on the way (raw chunks are smaller than their
decoded size, unwritten chunks report nothing). So the bar ends at exactly 100 %.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Collection
from typing import Any

from nwbstore.nodes import Dataset, Group

__all__ = ["DatasetMeter", "ProgressBar", "open_bar", "planned_bytes"]

#: ``progress=`` of :func:`nwbstore.convert`: on/off, or a tqdm-like factory.
ProgressOption = bool | Callable[..., Any] | None


def planned_bytes(
    node: Group | Dataset,
    dest_shape: Callable[[Dataset], tuple[int, ...]],
    completed: Collection[str] = (),
) -> tuple[int, int]:
    """Return ``(total, already_done)`` destination bytes of the datasets at or below ``node``.

    ``dest_shape`` is the shape each dataset gets in the destination (the same function the
    copy uses, so truncation is counted as it is copied); datasets named in ``completed``
    count as done. Links are not followed, as in the copy.
    """
    total = done = 0

    def add(_name: str, item: Group | Dataset) -> None:
        nonlocal total, done
        if isinstance(item, Dataset):
            n = math.prod(dest_shape(item)) * item.dtype.itemsize
            total += n
            if item.name in completed:
                done += n

    if isinstance(node, Dataset):
        add(node.name, node)
    else:
        node.visititems(add)
    return total, done


def open_bar(
    progress: ProgressOption, *, total: int | None, initial: int = 0, desc: str = "convert"
) -> Any:
    """Create the bar for ``progress=`` (``None`` when there is to be none).

    ``True`` makes a :mod:`tqdm` bar on stderr that stays off when stderr is not a terminal
    (in a notebook, :mod:`tqdm.auto` shows its widget); a callable is called like ``tqdm``
    (``total=``, ``initial=``, ``unit=``, ``unit_scale=``, ``desc=``) and must return an
    object with ``update(n)``, ``close()`` and writable ``total``. ``total=None``: the size is
    not known (the bar counts bytes without a percentage).
    """
    if progress is None or progress is False:
        return None
    kwargs: dict[str, Any] = dict(
        total=total, initial=initial, unit="B", unit_scale=True, desc=desc
    )
    if callable(progress):
        return progress(**kwargs)
    from tqdm.auto import tqdm
    from tqdm.autonotebook import tqdm as chosen
    from tqdm.std import tqdm as terminal_tqdm

    in_terminal = chosen is terminal_tqdm  # tqdm.auto picked the text bar, not a widget
    if in_terminal and not _is_terminal(sys.stderr):
        kwargs["disable"] = True
    return tqdm(**kwargs)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


class ProgressBar:
    """Thread-safe front of a tqdm-like bar, handing out one :class:`DatasetMeter` per dataset."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self._lock = threading.Lock()

    def update(self, n: int) -> None:
        """Advance the bar by ``n`` bytes."""
        if n > 0:
            with self._lock:
                self.bar.update(n)

    def grow(self, total: int, done: int = 0) -> None:
        """Add ``total`` bytes found during the walk (resolved external links), ``done`` of
        them already finished by an interrupted run."""
        with self._lock:
            self.bar.total = (self.bar.total or 0) + total
            if done:
                self.bar.update(done)
            elif hasattr(self.bar, "refresh"):
                self.bar.refresh()

    def dataset(self, nbytes: int) -> DatasetMeter:
        """A meter for one dataset of ``nbytes`` destination bytes."""
        return DatasetMeter(self, nbytes)


class DatasetMeter:
    """Progress of one dataset: ``meter(n)`` per chunk or block, :meth:`finish` at the end.

    Reports are capped at the dataset's size and :meth:`finish` adds what is missing, so the
    dataset moves the bar by exactly its size.
    """

    def __init__(self, bar: ProgressBar, nbytes: int) -> None:
        self._bar = bar
        self._size = nbytes
        self._done = 0
        self._lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self._lock:
            step = max(0, min(n, self._size - self._done))
            self._done += step
        self._bar.update(step)

    def finish(self) -> None:
        """Count the rest of the dataset (idempotent)."""
        self(self._size - self._done)
