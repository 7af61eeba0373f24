"""A walk over a store that keeps going past arrays it may not read (``nwbstore info``).

Legacy hdmf-zarr (<= 0.13) stores hold object arrays encoded with the Pickle codec, which
nwbstore refuses to read unless asked to (``allow_pickle=True``). Inspecting such a store
should still show everything else, and name the arrays it skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from nwbstore.errors import PickleRefusedError
from nwbstore.links import ExternalLink, SoftLink, join_path
from nwbstore.nodes import Dataset, Group

__all__ = ["PICKLE_NOTE", "StoreSummary", "child_or_refusal", "summarize", "walk_readable"]

#: How text views mark an array that was not read because of its Pickle codec.
PICKLE_NOTE = "Pickle codec (not read; pass --allow-pickle)"


def child_or_refusal(group: Group, name: str) -> Group | Dataset | PickleRefusedError:
    """The child ``name`` of ``group`` (links followed), or the refusal to read a Pickle array."""
    try:
        return group._get_child(name)
    except PickleRefusedError as err:
        return err


def walk_readable(group: Group) -> Iterator[tuple[str, Group | Dataset | PickleRefusedError]]:
    """Yield ``(path, node)`` for every real (non-link) member below ``group``, depth first.

    A Pickle array that may not be read is yielded as its :class:`PickleRefusedError` instead
    of ending the walk.
    """
    for name in group:
        if group._get_link(name) is not None:
            continue
        child = child_or_refusal(group, name)
        yield join_path(group.name, name), child
        if isinstance(child, Group):
            yield from walk_readable(child)


@dataclass
class StoreSummary:
    """Counts behind ``nwbstore info``.

    Attributes
    ----------
    groups
        Groups below the root (as h5py's ``visititems`` counts them).
    datasets
        Datasets, including those listed in ``pickled``.
    soft_links, external_links
        Links (not followed), counted where they are.
    nbytes
        Decoded size of the datasets that were read.
    pickled
        Paths of datasets not read because they use the Pickle codec.
    """

    groups: int = 0
    datasets: int = 0
    soft_links: int = 0
    external_links: int = 0
    nbytes: int = 0
    pickled: list[str] = field(default_factory=list)

    @property
    def links(self) -> int:
        """Soft and external links together."""
        return self.soft_links + self.external_links

    def _count_links(self, group: Group) -> None:
        for name in group:
            link = group._get_link(name)
            self.soft_links += isinstance(link, SoftLink)
            self.external_links += isinstance(link, ExternalLink)


def summarize(group: Group) -> StoreSummary:
    """Count the groups, datasets, links and bytes below ``group`` (see :class:`StoreSummary`)."""
    summary = StoreSummary()
    summary._count_links(group)
    for path, node in walk_readable(group):
        if isinstance(node, PickleRefusedError):
            summary.datasets += 1
            summary.pickled.append(path)
        elif isinstance(node, Dataset):
            summary.datasets += 1
            summary.nbytes += node.nbytes
        else:
            summary.groups += 1
            summary._count_links(node)
    return summary
