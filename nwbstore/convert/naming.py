"""Name the dataset in any error raised while a conversion creates or copies it.

h5py and zarr raise messages such as "Chunk shape must not be greater than data shape" that
say nothing of which of a file's hundreds of datasets failed; a conversion re-raises them
with the dataset path and the source store's URL in front.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["dataset_errors_named", "named_error"]


def _prefix(path: str, url: str) -> str:
    return f"dataset {path!r} of {url}"


def named_error(err: Exception, path: str, url: str) -> Exception:
    """``err`` with a message starting with the dataset path and the store URL.

    The result has the class of ``err`` (so ``except`` clauses keep working) and ``err`` as
    its cause. An error whose class cannot be rebuilt from a message gets the name as a note.
    """
    prefix = _prefix(path, url)
    text = str(err.args[0]) if len(err.args) == 1 else str(err)
    if text.startswith(prefix):
        return err
    try:
        new = type(err)(f"{prefix}: {text}")
    except Exception:  # a class with another constructor: keep it, add the name as a note
        err.add_note(prefix)
        return err
    new.__cause__ = err
    return new


@contextmanager
def dataset_errors_named(path: str, url: str) -> Iterator[None]:
    """Re-raise any ``Exception`` inside the block through :func:`named_error`."""
    try:
        yield
    except Exception as err:
        new = named_error(err, path, url)
        if new is err:
            raise
        raise new from err
