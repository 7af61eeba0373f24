"""One store group as xarray variables (not decoded yet), with NWB dims and coordinates.

The rules (see docs/remote-and-xarray.md):

- dims come from the NWB schema (the dims option whose rank matches), renamed to friendly
  names (``num_times`` -> ``time``, ``num_channels``/``num_electrodes`` -> ``channel``); a
  group that is not an NWB type takes ``_ARRAY_DIMENSIONS`` / Zarr v3 ``dimension_names``,
  else ``dim_0``...; a name already used with another size becomes ``<variable>_<dim>``;
- a TimeSeries gets a ``time`` coordinate from ``timestamps`` or from ``starting_time`` and
  its ``rate`` (a lazy range index), and a region (``electrodes``, ``rois``) becomes the
  coordinate of the data's second axis with the referenced table's columns beside it;
- ``conversion``/``offset`` become CF ``scale_factor``/``add_offset``; ``channel_conversion``
  is applied per channel when values are decoded;
- a DynamicTable is a dataset on ``id``; a ragged column is a CF contiguous ragged array
  (values on ``<col>_obs``, counts in ``<col>_count`` with ``sample_dimension``);
- references and links are shown as their targets' paths.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from xarray.core import indexing

from nwbstore.errors import NodeNotFoundError, NwbStoreError
from nwbstore.links import Reference
from nwbstore.nodes import Dataset, Group
from nwbstore.xarray._array import CountArray, NwbstoreArray, read_outer
from nwbstore.xarray._schema import Schema, schema_for
from nwbstore.xarray._values import attr_value, clean_attrs, link_text, text_values

__all__ = ["INDEX_COORD_MAX", "Built", "RangeCoord", "build_group"]

#: Timestamps with at most this many values (1 MiB of float64) become the ``time`` index,
#: read at open; longer ones stay lazy as a non-index ``timestamps`` coordinate on ``time``.
INDEX_COORD_MAX = 131_072

_STORED_DIMS_ATTR = "_ARRAY_DIMENSIONS"

#: Threads reading a region's table columns at open.
_COLUMN_READERS = 8


@dataclass(frozen=True)
class RangeCoord:
    """An evenly spaced coordinate computed from metadata, never read: ``start + i / rate``."""

    name: str
    start: float
    rate: float
    size: int
    attrs: dict[str, Any]


@dataclass
class Built:
    """Variables (CF-encoded, lazy), coordinate names and attributes of one group."""

    variables: dict[str, xr.Variable] = field(default_factory=dict)
    coords: set[str] = field(default_factory=set)
    attrs: dict[str, Any] = field(default_factory=dict)
    ranges: list[RangeCoord] = field(default_factory=list)


class _Dims:
    """Allocates dimension names of one group: a name used with another size is renamed."""

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}

    def claim(
        self, var: str, names: tuple[str | None, ...], shape: tuple[int, ...]
    ) -> tuple[str, ...]:
        out: list[str] = []
        for i, size in enumerate(shape):
            given = names[i] if i < len(names) else None
            name = given if given else f"dim_{i}"
            candidate = name
            while candidate in out or self.sizes.get(candidate, size) != size:
                candidate = f"{var}_{name}" if candidate == name else candidate + "_"
            self.sizes[candidate] = size
            out.append(candidate)
        return tuple(out)


def _encoding(dataset: Dataset, dims: tuple[str, ...]) -> dict[str, Any]:
    chunks = dataset.chunks
    if not chunks or len(chunks) != len(dims):
        return {}
    return {
        "preferred_chunks": dict(zip(dims, (int(c) for c in chunks), strict=True)),
        "chunksizes": tuple(int(c) for c in chunks),
    }


def _lazy(dims: tuple[str, ...], array: Any, attrs: dict[str, Any], enc: dict) -> xr.Variable:
    return xr.Variable(dims, indexing.LazilyIndexedArray(array), attrs, enc)


def _stored_dims(dataset: Dataset) -> tuple[str, ...] | None:
    """Dimension names stored with a Zarr array (v3 ``dimension_names``, v2 attribute)."""
    zarray = getattr(dataset, "zarr_array", None)
    names = getattr(getattr(zarray, "metadata", None), "dimension_names", None)
    if names is None and _STORED_DIMS_ATTR in dataset.attrs:
        names = attr_value(dataset.attrs[_STORED_DIMS_ATTR])
    if names is None or len(names) != dataset.ndim or any(n is None for n in names):
        return None
    return tuple(str(n) for n in names)


class _GroupReader:
    def __init__(self, group: Group, schema: Schema, *, mask_and_scale: bool) -> None:
        self.group = group
        self.schema = schema
        self.mask_and_scale = mask_and_scale
        attrs = group.attrs
        self.neurodata_type = attrs.get("neurodata_type")
        self.namespace = attrs.get("namespace")
        self.out = Built(attrs=clean_attrs(attrs))
        # an untyped group (``general``) takes dims from its nearest typed ancestor's spec
        self.spec_type, self.spec_namespace, self.subpath = self._typed_ancestor()
        self.dims = _Dims()
        self.datasets: dict[str, Dataset] = {}
        self.links: dict[str, str] = {}
        self.children: set[str] = set()
        for name in group:
            link = group.get_link(name)
            try:
                node = group[name]
            except (NodeNotFoundError, NwbStoreError, OSError):
                node = None  # a broken (e.g. external) link: shown by its target only
            if link is not None:
                self.links[name] = link_text(link)
            if isinstance(node, Dataset):
                self.datasets[name] = node
            else:
                self.children.add(name)
                if link is not None:  # a link to a group: its target's path
                    key = name if name not in self.out.attrs else f"{name}_link"
                    self.out.attrs[key] = self.links[name]

    def _typed_ancestor(self) -> tuple[str | None, str | None, tuple[str, ...]]:
        if self.neurodata_type is not None:
            return self.neurodata_type, self.namespace, ()
        parts = [p for p in self.group.name.split("/") if p]
        for i in range(len(parts) - 1, -1, -1):
            node = self.group.store.root["/" + "/".join(parts[:i])]
            if "neurodata_type" in node.attrs:
                ns = node.attrs.get("namespace")
                return node.attrs["neurodata_type"], ns, tuple(parts[i:])
        return None, None, ()

    # -- helpers ---------------------------------------------------------------------------

    def _dims_for(self, name: str, ds: Dataset) -> tuple[str | None, ...]:
        if ds.ndim == 0:
            return ()
        own = self.schema.spec_dims(
            self.spec_namespace, self.spec_type, name, ds.ndim, self.subpath
        )
        if own is not None:
            return own
        stored = _stored_dims(ds)
        if stored is not None:
            return stored
        return (None,) * ds.ndim

    def _attrs(self, name: str, ds: Dataset, drop: tuple[str, ...] = ()) -> dict[str, Any]:
        attrs = clean_attrs(ds.attrs, drop=(_STORED_DIMS_ATTR, *drop))
        if name in self.links:
            attrs["link_target"] = self.links[name]
        return attrs

    def _free(self, name: str) -> str:
        """``name``, or a variant not used by a variable or a child group yet."""
        while name in self.out.variables or name in self.children:
            name += "_"
        return name

    def add(
        self,
        name: str,
        ds: Dataset,
        names: tuple[str | None, ...],
        *,
        attrs: dict[str, Any] | None = None,
        array: Any = None,
    ) -> tuple[str, ...]:
        """Add ``ds`` as lazy variable(s) named ``name`` (one per field if compound)."""
        dims = self.dims.claim(name, names, tuple(ds.shape))
        attrs = self._attrs(name, ds) if attrs is None else attrs
        enc = _encoding(ds, dims)
        if ds.dtype.names and array is None:
            for f in ds.dtype.names:
                var = self._free(f"{name}_{f}")
                fattrs = {**attrs, "compound_field": f, "compound_dataset": name}
                self.out.variables[var] = _lazy(dims, NwbstoreArray(ds, field=f), fattrs, enc)
            return dims
        arr = NwbstoreArray(ds) if array is None else array
        self.out.variables[self._free(name)] = _lazy(dims, arr, attrs, enc)
        return dims

    # -- the three kinds of groups ---------------------------------------------------------

    def build(self) -> Built:
        nt, ns = self.neurodata_type, self.namespace
        is_table = "colnames" in self.group.attrs or self.schema.is_a(ns, nt, "DynamicTable")
        if is_table and "id" in self.datasets:
            self._table()
            return self.out
        if self.schema.is_a(ns, nt, "TimeSeries") or (
            "data" in self.datasets
            and ("timestamps" in self.datasets or "starting_time" in self.datasets)
        ):
            self._timeseries()
            return self.out
        for name, ds in self.datasets.items():
            self.add(name, ds, self._dims_for(name, ds))
        return self.out

    def _timeseries(self) -> None:
        done: set[str] = set()
        data = self.datasets.get("data")
        data_dims: tuple[str, ...] = ()
        if data is not None and data.ndim >= 1:
            names = self.schema.spec_dims(self.namespace, self.neurodata_type, "data", data.ndim)
            if names is None:
                names = ("time", *self._dims_for("data", data)[1:])
            data_dims = self._add_data(data, names)
            done.add("data")
        n_time = data.shape[0] if data is not None and data.ndim >= 1 else None
        if data_dims and data_dims[0] == "time":
            done |= self._time_coord(n_time)
        if data is not None and data.ndim >= 2:
            done |= self._region_coord(data_dims[1], data.shape[1])
        for name, ds in self.datasets.items():
            if name not in done:
                self.add(name, ds, self._dims_for(name, ds))

    def _add_data(self, data: Dataset, names: tuple[str | None, ...]) -> tuple[str, ...]:
        attrs = self._attrs("data", data, drop=("conversion", "offset"))
        conversion = data.attrs.get("conversion", 1.0)
        offset = data.attrs.get("offset", 0.0)
        if float(conversion) != 1.0:
            attrs["scale_factor"] = np.float64(conversion)
        if float(offset) != 0.0:
            attrs["add_offset"] = np.float64(offset)
        array: Any = None
        scale = self.datasets.get("channel_conversion")
        if (
            self.mask_and_scale
            and scale is not None
            and data.ndim >= 2
            and scale.shape == (data.shape[1],)
        ):
            array = NwbstoreArray(data, channel_scale=np.asarray(scale[:]), channel_axis=1)
            attrs["channel_conversion"] = "applied"
        return self.add("data", data, names, attrs=attrs, array=array)

    def _time_coord(self, n_time: int | None) -> set[str]:
        stamps = self.datasets.get("timestamps")
        if stamps is not None and stamps.ndim == 1 and stamps.shape[0] == n_time:
            name = "time" if stamps.shape[0] <= INDEX_COORD_MAX else "timestamps"
            attrs = self._attrs("timestamps", stamps)
            self.dims.claim(name, ("time",), tuple(stamps.shape))
            enc = _encoding(stamps, ("time",))
            self.out.variables[name] = _lazy(("time",), NwbstoreArray(stamps), attrs, enc)
            self.out.coords.add(name)
            return {"timestamps"}
        start = self.datasets.get("starting_time")
        if stamps is None and start is not None and n_time is not None and "rate" in start.attrs:
            rate = float(start.attrs["rate"])
            if rate > 0:
                attrs = {"unit": "seconds", "rate": rate, "starting_time": float(start[()])}
                self.out.ranges.append(
                    RangeCoord("time", attrs["starting_time"], rate, int(n_time), attrs)
                )
        return set()

    def _region_coord(self, dim: str, size: int) -> set[str]:
        """A region (DynamicTableRegion) of ``size`` rows as the coordinate of ``dim``."""
        for name in ("electrodes", *sorted(self.datasets)):
            ds = self.datasets.get(name)
            if ds is None or ds.ndim != 1 or ds.shape[0] != size or "table" not in ds.attrs:
                continue
            table_ref = ds.attrs["table"]
            if not isinstance(table_ref, Reference):
                continue
            rows = np.asarray(ds[:], dtype=np.int64)
            self.out.variables[dim] = xr.Variable((dim,), rows, self._attrs(name, ds))
            self.out.coords.add(dim)
            self._table_columns(name, dim, table_ref, rows)
            return {name}
        return set()

    def _table_columns(self, region: str, dim: str, ref: Reference, rows: np.ndarray) -> None:
        if ref.source not in (".", ""):
            return
        try:
            table = self.group.store[ref.path]
        except NodeNotFoundError:
            return
        if not isinstance(table, Group):
            return
        names = set(table.keys())
        columns: list[tuple[str, Dataset]] = []
        for col in table:
            if col == "id" or f"{col}_index" in names or col.endswith("_index"):
                continue
            ds = table[col]
            if isinstance(ds, Dataset) and ds.ndim == 1 and not ds.dtype.names:
                columns.append((col, ds))
        # one round of concurrent small reads, not one round per column (object storage)
        with ThreadPoolExecutor(max_workers=_COLUMN_READERS) as pool:
            read = pool.map(lambda c: text_values(read_outer(c[1], (rows,))), columns)
            values_by_column = list(read)
        for (col, ds), values in zip(columns, values_by_column, strict=True):
            var = col
            if var in self.out.variables or var in self.datasets or var in self.dims.sizes:
                var = f"{region}_{col}"
            var = self._free(var)
            attrs = {**clean_attrs(ds.attrs), "table": ref.path}
            self.out.variables[var] = xr.Variable((dim,), values, attrs)
            self.out.coords.add(var)

    def _table(self) -> None:
        ids = self.datasets["id"]
        n_rows = ids.shape[0]
        self.add("id", ids, ("id",))
        self.out.coords.add("id")
        indexes = {n for n in self.datasets if n.endswith("_index") and n[:-6] in self.datasets}
        for name, ds in self.datasets.items():
            if name == "id" or name in indexes:
                continue
            chain: list[str] = []
            while f"{(chain or [name])[-1]}_index" in self.datasets:
                chain.append(f"{(chain or [name])[-1]}_index")
            rest = self._column_rest(name, ds)
            if not chain:
                first = "id" if ds.ndim >= 1 and ds.shape[0] == n_rows else None
                self.add(name, ds, (first, *rest) if ds.ndim else ())
                continue
            levels = [name, *chain]
            for j in range(len(chain), 0, -1):
                index = self.datasets[levels[j]]
                target = levels[j - 1]
                dim = "id" if j == len(chain) else f"{levels[j]}_obs"
                attrs = {
                    **self._attrs(levels[j], index),
                    "sample_dimension": f"{target}_obs",
                    "ragged_index": levels[j],
                }
                self.add(f"{target}_count", index, (dim,), attrs=attrs, array=CountArray(index))
            self.add(name, ds, (f"{name}_obs", *rest))

    def _column_rest(self, name: str, ds: Dataset) -> tuple[str | None, ...]:
        if ds.ndim <= 1:
            return ()
        names = self.schema.spec_dims(self.namespace, self.neurodata_type, name, ds.ndim)
        if names is None:
            stored = _stored_dims(ds)
            names = stored if stored is not None else (None,) * ds.ndim
        return tuple(n if n else f"{name}_dim_{i + 1}" for i, n in enumerate(names[1:]))


def build_group(
    group: Group, *, schema: Schema | None = None, mask_and_scale: bool = True
) -> Built:
    """The variables, coordinates and attributes of ``group`` (lazy; CF-encoded).

    ``schema``: the NWB schema to take dims from (default: pynwb's plus the extensions the
    store caches; pass :func:`~nwbstore.xarray._schema.schema_for` once for many groups).
    """
    schema = schema_for(group.store) if schema is None else schema
    return _GroupReader(group, schema, mask_and_scale=mask_and_scale).build()
