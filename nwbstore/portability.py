"""Which datasets of a store use codecs that not every reader of its format decodes.

"Portable" follows :data:`nwbstore.codecs.PORTABLE_RULES`: Zarr v3 core codecs, Zarr v2
standard compressors without filters, HDF5 filters built into every libhdf5. ``nwbstore info``
prints this; ``nwbstore convert --portable`` writes portable output.
"""

from __future__ import annotations

from typing import Literal

from nwbstore.codecs import PORTABLE_RULES, non_portable_stages, portable_flavour, row_by_name
from nwbstore.codecs._spec import CodecSpec
from nwbstore.errors import NwbStoreError, PickleRefusedError
from nwbstore.nodes import Dataset, Store
from nwbstore.summary import walk_readable

__all__ = ["non_portable_codecs"]


def _label(spec: CodecSpec, flavour: str) -> str:
    """The codec as the store names it (``numcodecs.zlib``, ``shuffle``, ``Blosc (32001)``)."""
    row = row_by_name(spec.name)
    if row is None:
        return spec.name
    if flavour == "hdf5":
        return f"{row.hdf5_name} ({row.hdf5_id})" if row.hdf5_id is not None else spec.name
    if flavour == "zarr3":
        return str(row.zarr_v3 or spec.name)
    name = str(row.zarr_v2 or spec.name)
    return name if row.role == "compression" else f"{name} (filter)"


def non_portable_codecs(store: Store) -> tuple[str, list[tuple[str, list[str]]]]:
    """Return the rule that applies to ``store`` and its datasets that break it.

    Returns
    -------
    rule
        The portable rule for the store's format, in words.
    found
        ``(dataset path, [codec names as the store spells them])`` for each dataset with a
        codec outside the rule; a dataset whose settings cannot be read lists the reason.
    """
    target: Literal["hdf5", "zarr"] = "hdf5" if store.format == "hdf5" else "zarr"
    flavour = portable_flavour(target, int(getattr(store, "zarr_format", 3)))
    found: list[tuple[str, list[str]]] = []

    for path, node in walk_readable(store.root):
        if isinstance(node, PickleRefusedError):  # a legacy array, not opened by default
            found.append((path, ["numcodecs.pickle (legacy; not read)"]))
            continue
        if not isinstance(node, Dataset):
            continue
        try:
            pipeline = node.settings.pipeline
        except NwbStoreError as err:
            found.append((node.name, [f"unreadable codec settings ({type(err).__name__})"]))
            continue
        bad = non_portable_stages(pipeline, flavour)
        if bad:
            found.append((node.name, [_label(s, flavour) for s in bad]))
    return PORTABLE_RULES[flavour], found
