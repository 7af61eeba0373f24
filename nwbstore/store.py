"""The public entry point :func:`open` and the object model it returns."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from nwbstore.backends.registry import detect_backend, get_backend
from nwbstore.errors import (
    IncompleteStoreError,
    NwbStoreError,
    SettingsError,
    UnknownFormatError,
)
from nwbstore.nodes import (
    INCOMPLETE_ATTR,
    Attributes,
    Capabilities,
    Dataset,
    Group,
    Mode,
    Node,
    Store,
)

__all__ = ["Attributes", "Capabilities", "Dataset", "Group", "Node", "Store", "open"]

_MODES = ("r", "r+", "w", "w-", "x", "a")


def open(
    url: str | os.PathLike[str],
    mode: Mode = "r",
    *,
    format: str | None = None,
    driver: str | None = None,
    memb_size: int | None = None,
    zarr_format: int = 3,
    storage_options: Mapping[str, Any] | None = None,
    allow_incomplete: bool = False,
    allow_pickle: bool = False,
    concurrency: int | None = None,
    catalog: bool | str | os.PathLike[str] = True,
) -> Store:
    """Open an HDF5 file or a Zarr store, local or remote.

    Parameters
    ----------
    url
        A local path (``session.nwb``, ``session.nwb.zarr``, ``raw_%d.h5``) or a URL
        (``s3://bucket/session.nwb.zarr``, ``https://.../file.nwb``, ``memory://scratch``).
    mode
        As in h5py: ``"r"`` read only (must exist), ``"r+"`` read/write (must exist), ``"w"``
        create (replace if it exists), ``"w-"`` or ``"x"`` create (fail if it exists),
        ``"a"`` read/write if it exists, create otherwise.
    format
        ``"hdf5"`` or ``"zarr"``; by default taken from the extension, then from the content.
    driver
        HDF5 driver: ``"sec2"`` (default for local files), ``"family"`` (also implied by a
        ``%d`` in the file name), ``"fileobj"`` (implied for remote URLs).
    memb_size
        Member size in bytes for a new HDF5 family. When reading, nwbstore finds it from the
        first member; an explicit value that disagrees is an error.
    zarr_format
        Zarr format of a new Zarr store (3, the default, or 2). Existing stores are read in
        the format they have.
    storage_options
        Options for fsspec/s3fs (``endpoint_url``, ``key``, ``secret``, ``anon``, ...),
        used on every request. ``AWS_ENDPOINT_URL`` and the usual AWS variables also work.
    allow_incomplete
        Open a store whose conversion or streaming write has not finished (it carries the
        incomplete mark). By default such a store is refused with ``IncompleteStoreError``.
    allow_pickle
        Zarr only: read legacy arrays that declare the Pickle codec (hdmf-zarr <= 0.13 object
        arrays) with nwbstore's own decoder, which accepts plain values (text, numbers, lists,
        dicts, references) and never runs code from the data; those datasets are read-only.
        By default reading them raises ``PickleRefusedError``.
    concurrency
        Requests in flight to object storage at most: the chunk uploads a Zarr store on object
        storage runs in parallel (default 32), the range GETs of one read of a remote HDF5
        dataset (default 16), and the size of the connection pool of a remote store
        (``config_kwargs["max_pool_connections"]`` in s3fs's options, unless
        ``storage_options`` sets it). No effect on local files and ``memory://``.
    catalog
        Remote HDF5 only: the metadata catalog (the byte spans h5py read, validated by the
        object's ETag). True (default): use and update the local cache
        (``$NWBSTORE_CACHE_DIR``, else ``~/.cache/nwbstore/catalogs``), else the sidecar
        ``<url>.nwbcat`` written by ``nwbstore index``; a warm open is one request (none within
        ``NWBSTORE_CATALOG_TTL`` seconds, default 60). False: no catalog, nothing cached. A
        path or URL: read that catalog file (``CorruptCatalogError`` if it is damaged; ignored
        with a logged warning if it belongs to another version of the object).

    Returns
    -------
    Store
        An open store; use it as a context manager or call ``close()``.

    Raises
    ------
    StoreNotFoundError
        The input does not exist (mode ``"r"``/``"r+"``), or the bucket is missing.
    UnknownFormatError
        The input is neither HDF5 nor Zarr; the message lists what was tried.
    ReadOnlyError
        A write mode on a backend or location that cannot be written.
    IncompleteStoreError
        The store's writing did not finish (see ``allow_incomplete``).
    PickleRefusedError
        (When a dataset is read.) It declares the Pickle codec and ``allow_pickle`` is False,
        or its Pickle data holds more than plain values.

    Examples
    --------
    >>> import nwbstore
    >>> with nwbstore.open("memory://doc-example", mode="w") as store:
    ...     ds = store.root.create_dataset("x", data=[1, 2, 3])
    ...     ds[:].tolist()
    [1, 2, 3]
    """
    if mode not in _MODES:
        raise ValueError(f"mode={mode!r} is not one of {', '.join(map(repr, _MODES))}")
    if zarr_format not in (2, 3):
        raise ValueError(f"zarr_format={zarr_format!r} must be 2 or 3")
    url_s = os.fspath(url)
    _check_concurrency(concurrency)
    backend = detect_backend(
        url_s, mode, format=format, driver=driver, storage_options=storage_options
    )
    cls = get_backend(backend)
    catalog_option = _catalog_option(catalog)
    if backend != "hdf5-remote" and not isinstance(catalog_option, bool):
        raise SettingsError(
            f"catalog={catalog_option!r} applies to remote HDF5 files (s3://, https://) and "
            f"{url_s} is {backend}: drop the option"
        )
    options: dict[str, Any] = {"storage_options": dict(storage_options or {})}
    if backend.startswith("hdf5"):
        options.update(driver=driver, memb_size=memb_size)
        if backend == "hdf5-remote":
            options.update(concurrency=concurrency, catalog=catalog_option)
    elif driver is not None:
        raise UnknownFormatError(f"driver={driver!r} applies to HDF5 files, and {url_s} is Zarr")
    else:
        options.update(zarr_format=zarr_format, allow_pickle=allow_pickle, concurrency=concurrency)
    store: Store = cls.open_url(url_s, mode, backend=backend, **options)  # type: ignore[attr-defined]
    if not allow_incomplete and mode in ("r", "r+", "a") and _is_incomplete(store):
        store.close()
        raise IncompleteStoreError(
            f"{url_s} is incomplete: the conversion or write that made it did not finish. "
            "Run the conversion again with resume=True (nwbstore convert --resume), or open it "
            "with allow_incomplete=True to look inside."
        )
    return store


def _catalog_option(catalog: Any) -> bool | str:
    if isinstance(catalog, bool):
        return catalog
    if isinstance(catalog, str | os.PathLike):
        return os.fspath(catalog)
    raise SettingsError(
        f"catalog={catalog!r} must be True (local cache), False (no catalog) or the path or "
        "URL of a catalog file written by `nwbstore index`"
    )


def _is_incomplete(store: Store) -> bool:
    try:
        return INCOMPLETE_ATTR in store.root.attrs._names()
    except NwbStoreError:
        return False


def _check_concurrency(concurrency: int | None) -> None:
    """``concurrency`` must be a positive integer or None (the backends size their pools)."""
    if concurrency is None:
        return
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency={concurrency!r} must be a positive integer (or None)")
