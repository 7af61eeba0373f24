"""``nwbstore config URL --backend B``: the default configuration a stored NWB file would get."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from nwbstore.errors import NwbStoreError, UnknownFormatError

__all__ = ["describe_default_configuration"]


@contextlib.contextmanager
def _read_nwbfile(
    url: str, file_format: str, storage_options: dict[str, Any], memb_size: int | None
) -> Iterator[Any]:
    """Open a stored NWB file read-only with pynwb (HDF5) or hdmf-zarr (Zarr)."""
    with contextlib.ExitStack() as stack:
        try:
            nwbfile = stack.enter_context(_open(url, file_format, storage_options, memb_size))
        except NwbStoreError:
            raise
        except Exception as err:  # pynwb/hdmf raise anything on a file that is not NWB
            reader = "hdmf-zarr" if file_format == "zarr" else "pynwb"
            raise UnknownFormatError(
                f"{url}: {reader} cannot read it as an NWB file ({type(err).__name__}: {err}); "
                "--backend needs an NWB file"
            ) from err
        yield nwbfile


@contextlib.contextmanager
def _open(
    url: str, file_format: str, storage_options: dict[str, Any], memb_size: int | None
) -> Iterator[Any]:
    if file_format == "zarr":
        from hdmf_zarr import NWBZarrIO, NWBZarrV2IO, is_zarr_v2_file

        remote = "://" in url
        kw: dict[str, Any] = {"storage_options": storage_options} if remote else {}
        v2 = is_zarr_v2_file(url) if not remote else False
        io_cls = NWBZarrV2IO if v2 else NWBZarrIO
        with io_cls(url, mode="r", **kw) as io:
            yield io.read()
        return
    import h5py
    from pynwb import NWBHDF5IO

    with contextlib.ExitStack() as stack:
        if "://" in url and not url.startswith("file://"):
            import fsspec

            fobj = stack.enter_context(fsspec.open(url, "rb", **storage_options))
            h5 = stack.enter_context(h5py.File(fobj, "r"))
        elif "%" in os.path.basename(url):
            size = memb_size or os.path.getsize(url % 0)
            h5 = stack.enter_context(h5py.File(url, "r", driver="family", memb_size=size))
        else:
            h5 = stack.enter_context(h5py.File(url, "r"))
        io = stack.enter_context(NWBHDF5IO(file=h5, mode="r"))
        yield io.read()


def describe_default_configuration(
    url: str,
    backend: str,
    *,
    file_format: str,
    storage_options: dict[str, Any] | None = None,
    memb_size: int | None = None,
    zarr_format: int = 3,
) -> str:
    """The printout of the default configuration of the NWB file at ``url`` on ``backend``.

    Parameters
    ----------
    url
        The stored NWB file.
    backend
        ``"hdf5"`` or ``"zarr"``: the backend to configure for.
    file_format
        ``"hdf5"`` or ``"zarr"``: what the file at ``url`` is.
    storage_options
        fsspec options for a remote URL.
    memb_size
        Member size of an HDF5 family (``%d`` in the name); the first member's size if omitted.
    zarr_format
        For ``backend="zarr"``.
    """
    from nwbstore.nwb.configuration import get_default_backend_configuration

    with _read_nwbfile(url, file_format, dict(storage_options or {}), memb_size) as nwbfile:
        config = get_default_backend_configuration(
            nwbfile,
            backend,  # type: ignore[arg-type]
            zarr_format=zarr_format,
            include_stored=True,
        )
        return f"Default configuration on {config.pretty_backend_name} of {url}\n\n{config}"
