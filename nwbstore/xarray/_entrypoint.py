"""The ``nwbstore`` xarray engine: ``xr.open_dataset(url, engine="nwbstore", group=...)``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import xarray as xr
from xarray import conventions
from xarray.backends import BackendEntrypoint

import nwbstore
from nwbstore.errors import NodeNotFoundError
from nwbstore.links import normalize_path
from nwbstore.nodes import Group, Store
from nwbstore.xarray._group import Built, build_group
from nwbstore.xarray._schema import Schema, schema_for
from nwbstore.xarray._time_index import make_time_coords

__all__ = ["NwbstoreBackendEntrypoint"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_HDF5_MAGIC_OFFSETS = (0, 512, 1024, 2048)  # after a user block
_NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf")  # HDF5 too, but the netCDF engines' business


def _open_store(
    filename_or_obj: Any,
    storage_options: dict[str, Any] | None,
    format: str | None,
    driver: str | None,
    concurrency: int | None,
) -> tuple[Store, bool]:
    """The store to read, and whether this engine opened it (and so must close it)."""
    if isinstance(filename_or_obj, Store):
        return filename_or_obj, False
    try:
        url = os.fspath(filename_or_obj)
    except TypeError:
        raise TypeError(
            f"engine='nwbstore' opens a path or URL (str, os.PathLike) or an nwbstore Store, "
            f"not {type(filename_or_obj).__name__}"
        ) from None
    store = nwbstore.open(
        url,
        "r",
        format=format,
        driver=driver,
        storage_options=storage_options,
        concurrency=concurrency,
    )
    return store, True


def _group(store: Store, group: str | None) -> Group:
    if group in (None, "", "/"):
        return store.root
    assert group is not None
    path = normalize_path(group)
    try:
        node = store.root[path]
    except NodeNotFoundError:
        top = ", ".join(sorted(store.root.keys())) or "none"
        raise NodeNotFoundError(
            f"group {group!r} not found in {store.url}: pass the path of a group "
            f"(e.g. 'acquisition/ElectricalSeries'); top-level groups: {top}"
        ) from None
    if not isinstance(node, Group):
        raise NodeNotFoundError(
            f"group {group!r} in {store.url} is a dataset, not a group: open its parent "
            f"group {normalize_path(path.rsplit('/', 1)[0] or '/')!r} and take the variable"
        )
    return node


def _decode(built: Built, drop_variables: Iterable[str] | None, **decode: Any) -> xr.Dataset:
    drop = {drop_variables} if isinstance(drop_variables, str) else set(drop_variables or ())
    variables, attrs, coord_names = conventions.decode_cf_variables(
        built.variables, built.attrs, drop_variables=drop, **decode
    )
    ds = xr.Dataset(variables, attrs=attrs)
    ds = ds.set_coords([c for c in {*built.coords, *coord_names} if c in ds.variables])
    for rng in built.ranges:
        if rng.name in drop or rng.name in ds.variables:
            continue
        ds = ds.assign_coords(make_time_coords(rng.name, rng.start, rng.rate, rng.size))
        ds.variables[rng.name].attrs.update(rng.attrs)
    return ds


def _align_to_parents(groups: dict[str, xr.Dataset]) -> dict[str, xr.Dataset]:
    """Rename a child's dim that clashes with an index of an ancestor (DataTree inherits
    indexed coordinates: a child's ``id`` or ``time`` may not differ from its parent's)."""
    out: dict[str, xr.Dataset] = {}
    for path in sorted(groups, key=lambda p: (p.count("/"), p)):
        ds = groups[path]
        inherited: dict[str, xr.Variable] = {}
        parent = path
        while parent != "/":
            parent = parent.rsplit("/", 1)[0] or "/"
            if parent in out:
                for name in out[parent].xindexes:
                    inherited.setdefault(str(name), out[parent].variables[name])
        renames: dict[str, str] = {}
        for dim in ds.dims:
            theirs = inherited.get(str(dim))
            if theirs is None or theirs.dims != (dim,):
                continue
            ours = ds.variables.get(dim)
            same = ours is not None and ours.dims == (dim,) and ours.equals(theirs)
            if not same:
                renames[str(dim)] = f"{dim}_{path.rsplit('/', 1)[-1]}"
        out[path] = ds.rename(renames) if renames else ds
    return out


class NwbstoreBackendEntrypoint(BackendEntrypoint):
    """Open NWB files (HDF5 or Zarr, local, S3 or HTTPS) lazily with NWB dims and coordinates.

    Use ``engine="nwbstore"`` with :func:`xarray.open_dataset` (one group) or
    :func:`xarray.open_datatree` (every group). Values are read only when used; opening
    reads metadata and small coordinates (timestamps, table ids, electrode columns).

    Examples
    --------
    >>> import xarray as xr  # doctest: +SKIP
    >>> ds = xr.open_dataset("s.nwb", engine="nwbstore",
    ...                      group="acquisition/ElectricalSeries")  # doctest: +SKIP
    >>> ds.data.sel(time=slice(1.0, 2.0)).values  # doctest: +SKIP
    """

    description = (
        "NWB files (HDF5 or Zarr, local, S3 or HTTPS) through nwbstore, with NWB dims, "
        "time/channel coordinates and tables"
    )
    url = "https://nwbstore.readthedocs.io/en/latest/remote-and-xarray/"
    supports_groups = True
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "group",
        "storage_options",
        "mask_and_scale",
        "decode_times",
        "decode_timedelta",
        "use_cftime",
        "concat_characters",
        "decode_coords",
        "format",
        "driver",
        "concurrency",
    )

    def open_dataset(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        group: str | None = None,
        storage_options: dict[str, Any] | None = None,
        mask_and_scale: bool = True,
        decode_times: bool = True,
        decode_timedelta: bool | None = None,
        use_cftime: bool | None = None,
        concat_characters: bool = True,
        decode_coords: bool | str = True,
        format: str | None = None,
        driver: str | None = None,
        concurrency: int | None = None,
    ) -> xr.Dataset:
        """Open one group of an NWB file (the root by default) as an ``xarray.Dataset``.

        Parameters
        ----------
        filename_or_obj
            Path or URL (``s3://``, ``https://``) of an HDF5 file or Zarr store, or an open
            :class:`nwbstore.Store` (left open).
        group
            Path of the group, e.g. ``"acquisition/ElectricalSeries"`` or ``"units"``.
        storage_options
            fsspec/s3fs options (``endpoint_url``, ``anon``, ``key``...).
        mask_and_scale
            Apply NWB ``conversion``/``offset`` (as CF ``scale_factor``/``add_offset``) and
            ``channel_conversion``; ``False`` gives the stored values.
        format, driver, concurrency
            As in :func:`nwbstore.open`.
        drop_variables, decode_times, decode_timedelta, use_cftime, concat_characters, \
decode_coords
            As in :func:`xarray.open_dataset`.

        Raises
        ------
        NodeNotFoundError
            ``group`` does not exist or is a dataset.
        """
        store, owned = _open_store(filename_or_obj, storage_options, format, driver, concurrency)
        try:
            node = _group(store, group)
            ds = self._dataset(
                node,
                drop_variables,
                mask_and_scale=mask_and_scale,
                decode_times=decode_times,
                decode_timedelta=decode_timedelta,
                use_cftime=use_cftime,
                concat_characters=concat_characters,
                decode_coords=decode_coords,
            )
        except BaseException:
            if owned:
                store.close()
            raise
        if owned:
            ds.set_close(store.close)
        return ds

    @staticmethod
    def _dataset(
        group: Group, drop_variables: Any, schema: Schema | None = None, **decode: Any
    ) -> xr.Dataset:
        mask_and_scale = bool(decode["mask_and_scale"])
        built = build_group(group, schema=schema, mask_and_scale=mask_and_scale)
        return _decode(built, drop_variables, **decode)

    def open_groups_as_dict(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        group: str | None = None,
        storage_options: dict[str, Any] | None = None,
        mask_and_scale: bool = True,
        decode_times: bool = True,
        decode_timedelta: bool | None = None,
        use_cftime: bool | None = None,
        concat_characters: bool = True,
        decode_coords: bool | str = True,
        format: str | None = None,
        driver: str | None = None,
        concurrency: int | None = None,
    ) -> dict[str, xr.Dataset]:
        """Every group at or below ``group`` (NWB containers) as ``{path: Dataset}``.

        Paths are relative to ``group`` (``"/"`` is ``group`` itself). Links to groups are
        not followed (they appear as attributes holding the target path). Closing the
        ``"/"`` dataset closes the file.
        """
        groups, close = self._open_groups(
            filename_or_obj,
            drop_variables=drop_variables,
            group=group,
            storage_options=storage_options,
            format=format,
            driver=driver,
            concurrency=concurrency,
            decode={
                "mask_and_scale": mask_and_scale,
                "decode_times": decode_times,
                "decode_timedelta": decode_timedelta,
                "use_cftime": use_cftime,
                "concat_characters": concat_characters,
                "decode_coords": decode_coords,
            },
        )
        if close is not None:
            groups["/"].set_close(close)
        return groups

    def _open_groups(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None,
        group: str | None,
        storage_options: dict[str, Any] | None,
        format: str | None,
        driver: str | None,
        concurrency: int | None,
        decode: dict[str, Any],
    ) -> tuple[dict[str, xr.Dataset], Callable[[], None] | None]:
        """The groups' datasets, and what closes the store (``None``: the caller's store)."""
        store, owned = _open_store(filename_or_obj, storage_options, format, driver, concurrency)
        try:
            top = _group(store, group)
            groups: list[tuple[str, Group]] = [("/", top)]

            def collect(name: str, node: Any) -> None:
                if isinstance(node, Group):
                    groups.append(("/" + name, node))

            top.visititems(collect)
            schema = schema_for(store)
            out = {path: self._dataset(g, drop_variables, schema, **decode) for path, g in groups}
            out = _align_to_parents(out)
        except BaseException:
            if owned:
                store.close()
            raise
        return out, (store.close if owned else None)

    def open_datatree(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        group: str | None = None,
        storage_options: dict[str, Any] | None = None,
        mask_and_scale: bool = True,
        decode_times: bool = True,
        decode_timedelta: bool | None = None,
        use_cftime: bool | None = None,
        concat_characters: bool = True,
        decode_coords: bool | str = True,
        format: str | None = None,
        driver: str | None = None,
        concurrency: int | None = None,
    ) -> xr.DataTree:
        """Every group at or below ``group`` as an ``xarray.DataTree`` (options as in
        :meth:`open_groups_as_dict`); closing the tree closes the file."""
        groups, close = self._open_groups(
            filename_or_obj,
            drop_variables=drop_variables,
            group=group,
            storage_options=storage_options,
            format=format,
            driver=driver,
            concurrency=concurrency,
            decode={
                "mask_and_scale": mask_and_scale,
                "decode_times": decode_times,
                "decode_timedelta": decode_timedelta,
                "use_cftime": use_cftime,
                "concat_characters": concat_characters,
                "decode_coords": decode_coords,
            },
        )
        tree = xr.DataTree.from_dict(groups)
        if close is not None:
            tree.set_close(close)
        return tree

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """``True`` for an nwbstore Store, ``.nwb`` / ``.nwb.zarr`` names, a local ``.zarr``
        whose root is an NWB file, and a local file with HDF5's signature. Never raises."""
        try:
            return _guess(filename_or_obj)
        except Exception:
            return False


def _guess(obj: Any) -> bool:
    if isinstance(obj, Store):
        return True
    try:
        path = os.fspath(obj)
    except TypeError:
        return False
    if not isinstance(path, str):
        return False
    low = path.lower().rstrip("/")
    if low.endswith((".nwb", ".nwb.zarr", ".nwb.h5")):
        return True
    if "://" in path and not low.startswith("file://"):
        return False  # a remote name says nothing more, and a probe would cost a request
    local = path[len("file://") :] if low.startswith("file://") else path
    if os.path.isdir(local):
        return low.endswith(".zarr") and _zarr_is_nwb(local)
    if os.path.isfile(local) and not low.endswith(_NETCDF_SUFFIXES):
        with open(local, "rb") as f:
            for offset in _HDF5_MAGIC_OFFSETS:
                f.seek(offset)
                if f.read(8) == _HDF5_MAGIC:
                    return True
    return False


def _zarr_is_nwb(path: str) -> bool:
    for meta, key in (("zarr.json", "attributes"), (".zattrs", None)):
        full = os.path.join(path, meta)
        if os.path.isfile(full):
            with open(full, encoding="utf-8") as f:
                doc = json.load(f)
            attrs = doc.get(key, {}) if key else doc
            if isinstance(attrs, dict) and (
                "nwb_version" in attrs or attrs.get("neurodata_type") == "NWBFile"
            ):
                return True
    return False
