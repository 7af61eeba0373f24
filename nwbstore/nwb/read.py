"""Open an NWB file (HDF5 or Zarr, local or remote) as a lazy ``pynwb.NWBFile``.

- HDF5: ``pynwb.NWBHDF5IO`` on the local file, on a family (member size found from the
  first member's size), or on the h5py file of nwbstore's remote HDF5 store for
  ``s3://``/``https://`` (no ros3; reads pinned to the object's ETag).
- Zarr v3: ``hdmf_zarr.NWBZarrIO`` over the group :func:`nwbstore.open` opened (with its
  consolidated metadata: one request for the whole hierarchy on object storage). Only
  extensions are read from the file's cached specifications; pynwb's own namespaces
  (``core``, ``hdmf-common``, ``hdmf-experimental``) come from pynwb.
  External links of a store on object storage (``../other.nwb.zarr``) are followed with the
  same storage options (hdmf-zarr 0.14 alone cannot follow them).
- Zarr v2 (hdmf-zarr <= 0.13): ``hdmf_zarr.NWBZarrV2IO``, read only.

``mode="a"`` (or ``"r+"``) opens a local HDF5 file or a Zarr v3 store for changes: datasets can be
resized and written, containers added and written with ``io.write(nwbfile)`` (the io is
``nwbfile.read_io``). A Zarr store's consolidated metadata is rewritten when the block ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any, Literal

from nwbstore.errors import StoreNotFoundError, UnsupportedOperationError
from nwbstore.nwb._io_format import family_member, is_family, is_remote, nwb_format

__all__ = ["read"]

_MODES = ("r", "r+", "a")


@contextmanager
def read(
    url: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    mode: str = "r",
    format: str | None = None,
) -> Iterator[Any]:
    """Open the NWB file at ``url`` and yield its ``NWBFile`` (data read lazily).

    Parameters
    ----------
    url
        ``session.nwb``, ``raw_%d.nwb`` (family), ``session.nwb.zarr``, or the same on object
        storage or the web.
    storage_options
        fsspec/s3fs options for remote files.
    mode
        ``"r"`` (default), or ``"a"``/``"r+"`` to change the file in place (local HDF5,
        Zarr v3 local or on object storage).
    format
        ``"hdf5"`` or ``"zarr"`` when the name does not say.

    Yields
    ------
    pynwb.NWBFile
        Its ``read_io`` is the pynwb/hdmf-zarr io (``nwbfile.read_io.write(nwbfile)`` writes
        added containers in mode ``"a"``).

    Raises
    ------
    StoreNotFoundError
        Nothing is at ``url``.
    UnsupportedOperationError
        ``mode="a"`` on a file that cannot be changed in place (HDF5 on object storage,
        Zarr v2).
    """
    if mode not in _MODES:
        raise ValueError(f"mode={mode!r} is not one of {', '.join(map(repr, _MODES))}")
    url_s = os.fspath(url)
    fmt = _format_of(url_s, format, storage_options)
    options = dict(storage_options or {})
    with ExitStack() as stack:
        if fmt == "hdf5":
            io = _open_hdf5(url_s, mode, options, stack)
        else:
            from nwbstore.nwb._io_zarr import quiet_consolidation

            stack.enter_context(quiet_consolidation())  # io.write in mode "a" consolidates
            io = _open_zarr(url_s, mode, _one_request_per_get(url_s, options), stack)
        yield io.read()


def _one_request_per_get(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """s3fs options whose whole-object GETs are one request each.

    With ``max_concurrency > 1`` (s3fs's default is 10) s3fs sends a HEAD before every
    whole-object GET, to split large objects into concurrent ranges, and a HEAD and a LIST
    for a missing key (a chunk never written because it holds only the fill value). Zarr
    chunks are small and zarr reads them concurrently already, so one GET each is enough.
    """
    from nwbstore.backends.registry import split_protocol

    if split_protocol(url)[0] in ("s3", "s3a") and "max_concurrency" not in options:
        return {**options, "max_concurrency": 1}
    return options


def _format_of(url: str, format: str | None, storage_options: Mapping[str, Any] | None) -> str:
    try:
        return nwb_format(url, format)
    except ValueError:
        from nwbstore.backends.registry import detect_backend

        backend = detect_backend(url, "r", storage_options=storage_options)
        return "zarr" if backend.startswith("zarr") else "hdf5"


def _hdf5_mode(mode: str) -> str:
    return "r" if mode == "r" else "a"


def _open_hdf5(url: str, mode: str, options: dict[str, Any], stack: ExitStack) -> Any:
    import h5py
    from pynwb import NWBHDF5IO

    if is_remote(url):
        if mode != "r":
            raise UnsupportedOperationError(
                f"{url}: HDF5 on object storage cannot be changed in place (mode={mode!r}); "
                "download it, change it and write it again"
            )
        import nwbstore

        # nwbstore's remote HDF5 store: one probe, reads pinned to the object's ETag, the
        # metadata catalog when one is cached
        store = nwbstore.open(url, "r", format="hdf5", storage_options=options)
        stack.callback(store.close)
        h5 = store.h5file  # type: ignore[attr-defined]
        return stack.enter_context(NWBHDF5IO(file=h5, mode="r"))
    if is_family(url):
        first = family_member(url, 0)
        if not os.path.exists(first):
            raise StoreNotFoundError(f"{url}: no first member {first}")
        size = os.path.getsize(first)
        h5 = stack.enter_context(h5py.File(url, _hdf5_mode(mode), driver="family", memb_size=size))
        return stack.enter_context(NWBHDF5IO(file=h5, mode=_hdf5_mode(mode)))
    if not os.path.exists(url):
        raise StoreNotFoundError(f"{url} does not exist")
    return stack.enter_context(NWBHDF5IO(url, mode=_hdf5_mode(mode)))


def _open_zarr(url: str, mode: str, options: dict[str, Any], stack: ExitStack) -> Any:
    import nwbstore
    from nwbstore.nwb._io_zarr import StoreNWBZarrIO, nwb_manager

    zmode: Literal["r", "r+"] = "r" if mode == "r" else "r+"
    store = nwbstore.open(url, zmode, format="zarr", storage_options=options)
    stack.callback(store.close)
    if store.zarr_format == 2:  # type: ignore[attr-defined]
        if mode != "r":
            raise UnsupportedOperationError(
                f"{url} is Zarr v2 (hdmf-zarr <= 0.13), which hdmf-zarr 0.14 reads only; "
                "convert it to Zarr v3 (nwbstore convert) to change it"
            )
        from hdmf_zarr import NWBZarrV2IO

        source = url if is_remote(url) else os.path.abspath(url)
        kwargs: dict[str, Any] = {"storage_options": options} if is_remote(url) else {}
        return stack.enter_context(NWBZarrV2IO(source, mode="r", **kwargs))
    # hdmf-zarr reads each scalar and small dataset one after the other: fetch them in one
    # concurrent round first (on object storage; nothing is done for local stores)
    store.read_ahead_small_arrays(_read_when_built)  # type: ignore[attr-defined]
    group = store.zarr_group  # type: ignore[attr-defined]
    io = StoreNWBZarrIO(group, zmode, nwb_manager(group), url=url, storage_options=options)
    if zmode != "r":
        stack.callback(_reconsolidate, group)
    stack.callback(io.close)
    return io


def _read_when_built(path: str, array: Any) -> bool:
    """True for the small datasets hdmf-zarr reads while it builds the ``NWBFile``.

    Scalars (not the cached specifications), table ids, ``DynamicTableRegion`` indices and the
    file's small string lists (``file_create_date``, ``general/experimenter``, ...); the rest
    stays lazy.
    """
    if path.startswith("specifications/"):
        return False
    if array.ndim == 0:
        return True
    if array.ndim != 1:
        return False
    if path.rsplit("/", 1)[-1] == "id" or array.attrs.get("neurodata_type") == "DynamicTableRegion":
        return True
    return path.count("/") <= 1 and array.dtype.kind in "OTUS"


def _reconsolidate(group: Any) -> None:
    """Rewrite the consolidated metadata after changes made through hdmf-zarr or zarr."""
    from nwbstore.nwb._io_zarr import consolidate

    consolidate(group)
