"""NWB-aware truncation (layer 4): which datasets a truncated copy cuts, and where.

:func:`plan_truncation` reads a source store's metadata and a few index values before anything
is written, and returns a :class:`TruncationPlan` mapping each dataset that gets shorter to its
kept length along axis 0. The rules keep an NWB file consistent:

* tables (groups with a ``colnames`` attribute: DynamicTable and every subclass) are cut by
  rows: ``id`` and every row-aligned column keep ``k`` rows, a ``VectorIndex`` ``x_index``
  keeps ``k`` entries and its ``VectorData`` ``x`` is cut where the index says
  (``x_index[k-1]``); an index of an index is followed the same way;
* a table keeps every row a ``DynamicTableRegion`` points at (the region values never
  change): kept regions are read and the target keeps ``max(value) + 1`` rows, to a fixpoint
  over all regions; the category tables of an ``AlignedDynamicTable`` keep as many rows as it;
* ``TimeSeries`` (a group with ``data`` and ``timestamps`` or ``starting_time``) keep the first
  ``n`` entries of ``data``, ``timestamps`` and ``control``, or more where a
  ``TimeSeriesReferenceVectorData`` row points further (``idx_start + count``);
* everything else (``electrodes`` regions of a series, per-channel or per-ROI datasets,
  ``external_file``, strings, scalars, tables describing a series axis such as
  ``DecompositionSeries.bands``) is copied whole.

A store that is not NWB (no ``nwb_version`` or ``neurodata_type`` on its root) has the first
``n`` entries of every dataset kept, as ``convert(first_n=...)`` always did.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nwbstore.errors import SettingsError
from nwbstore.links import Reference, SoftLink, join_path
from nwbstore.nodes import Dataset, Group, Store
from nwbstore.settings import DatasetSettings

__all__ = ["TruncationPlan", "fit_chunks", "plan_truncation", "truncate"]

#: Names of the datasets of a TimeSeries that run along its time axis.
TIME_ALIGNED = ("data", "timestamps", "control")

#: Values read at once when scanning a region or a reference column.
_SCAN_BLOCK = 1 << 20


@dataclass(frozen=True)
class TruncationPlan:
    """Kept lengths along axis 0, decided before a truncated copy is written.

    Attributes
    ----------
    n
        The requested number of rows / time entries.
    source_url
        URL of the store the plan was made for.
    lengths
        Dataset path -> kept length, for the datasets that get shorter.
    nwb
        True when the source is NWB and unlisted datasets are copied whole; False for other
        stores, where every dataset keeps its first ``n`` entries.
    table_rows
        Table path -> rows kept (``n`` or more where regions point further).
    table_sizes
        Table path -> rows in the source.
    whole_tables
        Tables copied whole because they describe an axis of a series other than time.
    """

    n: int
    source_url: str
    lengths: Mapping[str, int]
    nwb: bool = True
    table_rows: Mapping[str, int] = field(default_factory=dict)
    table_sizes: Mapping[str, int] = field(default_factory=dict)
    whole_tables: frozenset[str] = frozenset()

    def kept_length(self, dataset: Dataset) -> int | None:
        """Return the kept length of ``dataset`` along axis 0, or None if it is copied whole."""
        shape = dataset.shape
        if not shape:
            return None
        if not self.nwb:
            kept: int | None = self.n
        elif dataset.store.url != self.source_url:
            return None  # a resolved external link's target: copied whole
        else:
            kept = self.lengths.get(dataset.name)
        if kept is None or kept >= shape[0]:
            return None
        return kept

    def summary(self) -> list[str]:
        """One line per table that loses rows or keeps more than ``n``, then a count."""
        if not self.nwb:
            return [f"first {self.n} entries of every dataset (the store is not NWB)"]
        lines = []
        for path in sorted(self.table_rows):
            kept, size = self.table_rows[path], self.table_sizes.get(path, 0)
            if kept == size and kept <= self.n:
                continue
            if path in self.whole_tables:
                why = " (kept whole: it describes an axis of a series)"
            else:
                why = " (rows that regions point at)" if kept > self.n else ""
            lines.append(f"{path}: {kept} of {size} rows{why}")
        lines.append(f"{len(self.lengths)} datasets shortened along their first axis")
        return lines


def fit_chunks(settings: DatasetSettings, shape: tuple[int, ...]) -> DatasetSettings:
    """Shrink ``settings``' chunks to fit ``shape`` on every axis of fixed size.

    HDF5 refuses a chunk longer than the data on an axis that cannot grow; a cut dataset
    often has a chunk longer than what is left. An empty axis becomes resizable (``None`` in
    ``maxshape``), since HDF5 needs a chunk of at least one element.
    """
    if settings.chunks is None or not shape:
        return settings
    limits = settings.maxshape or tuple(shape)
    chunks = tuple(
        min(c, max(s, 1)) if lim is not None else c
        for c, s, lim in zip(settings.chunks, shape, limits, strict=True)
    )
    maxshape = settings.maxshape
    if any(s == 0 for s in shape):
        base = maxshape or tuple(shape)
        maxshape = tuple(None if s == 0 else m for s, m in zip(shape, base, strict=True))
    if chunks == tuple(settings.chunks) and maxshape == settings.maxshape:
        return settings
    shards = settings.shards if chunks == tuple(settings.chunks) else None
    return settings.replace(chunks=chunks, shards=shards, maxshape=maxshape)


# --- reading the source -------------------------------------------------------------------


def _names(value: Any) -> list[str]:
    """Decode a ``colnames``/``categories`` attribute (string, list or array) to names."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    out = []
    for item in np.atleast_1d(np.asarray(value, dtype=object)).tolist():
        if isinstance(item, bytes):
            item = item.decode("utf-8")
        if isinstance(item, str) and item:
            out.append(item)
    return out


@dataclass
class _Table:
    path: str
    rows: int
    chains: list[list[Dataset]]  # each: row-aligned dataset first, then what it indexes
    cut: bool


@dataclass
class _Source:
    """What the walk collects from the source store."""

    tables: dict[str, _Table] = field(default_factory=dict)
    series: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> dataset path
    regions: list[tuple[Dataset, str]] = field(default_factory=list)  # (region, target table)
    ts_references: list[Dataset] = field(default_factory=list)
    ties: list[list[str]] = field(default_factory=list)  # tables that share a row count


def _is_series(group: Group, names: list[str]) -> bool:
    return "data" in names and ("timestamps" in names or "starting_time" in names)


def _walk(group: Group, found: _Source, in_series: bool = False) -> None:
    attrs = group.attrs
    names = list(group)
    if "colnames" in attrs:
        _add_table(group, attrs, names, found, cut=not in_series)
    elif _is_series(group, names):
        in_series = True
        entries: dict[str, str] = {}
        for name in TIME_ALIGNED:
            if name not in names:
                continue
            link = group.get_link(name)
            if isinstance(link, SoftLink):
                entries[name] = link.path
            elif link is None:
                entries[name] = join_path(group.name, name)
        found.series[group.name] = entries
    for name in names:
        if group.get_link(name) is not None:
            continue
        child = group[name]
        if isinstance(child, Group):
            _walk(child, found, in_series)
        else:
            _note_dataset(child, found)


def _add_table(group: Group, attrs: Any, names: list[str], found: _Source, *, cut: bool) -> None:
    real = {n for n in names if group.get_link(n) is None}

    def dataset(name: str) -> Dataset | None:
        if name not in real:
            return None
        node = group[name]
        return node if isinstance(node, Dataset) and node.ndim >= 1 else None

    ident = dataset("id")
    chains: list[list[Dataset]] = []
    if ident is not None:
        chains.append([ident])
    for column in _names(attrs.get("colnames")):
        chain: list[Dataset] = []
        name = column
        while (node := dataset(name)) is not None:
            chain.append(node)
            name += "_index"
        if chain:
            chains.append(chain[::-1])  # the row-aligned index first
    rows = ident.shape[0] if ident is not None else max((c[0].shape[0] for c in chains), default=0)
    found.tables[group.name] = _Table(group.name, rows, chains, cut)
    categories = [join_path(group.name, c) for c in _names(attrs.get("categories"))]
    if categories:
        found.ties.append([group.name, *categories])


def _note_dataset(node: Dataset, found: _Source) -> None:
    if node.ndim != 1:
        return
    target = node.attrs.get("table") if "table" in node.attrs else None
    if isinstance(target, Reference) and target.source in (".", ""):
        found.regions.append((node, target.path))
    names = node.dtype.names or ()
    if {"idx_start", "count", "timeseries"} <= set(names):
        found.ts_references.append(node)


class _Reader:
    """Small cached reads: index values and running maxima of region columns."""

    def __init__(self) -> None:
        self._index: dict[tuple[str, int], int] = {}
        self._max: dict[str, tuple[int, int | None]] = {}

    def index_value(self, node: Dataset, i: int) -> int:
        key = (node.name, i)
        if key not in self._index:
            self._index[key] = int(np.asarray(node[i : i + 1]).reshape(-1)[0])
        return self._index[key]

    def region_max(self, node: Dataset, extent: int) -> int | None:
        done, best = self._max.get(node.name, (0, None))
        for start in range(done, extent, _SCAN_BLOCK):
            block = np.asarray(node[start : min(extent, start + _SCAN_BLOCK)])
            if block.size:
                top = int(block.max())
                best = top if best is None else max(best, top)
        if extent > done:
            self._max[node.name] = (extent, best)
        return best


def _chain_lengths(chain: list[Dataset], rows: int, reader: _Reader) -> list[int]:
    """Kept lengths of a table column's datasets (row-aligned first) for ``rows`` rows."""
    lengths = []
    kept = rows
    for position, node in enumerate(chain):
        kept = max(0, min(kept, node.shape[0]))
        lengths.append(kept)
        if position + 1 < len(chain):
            kept = reader.index_value(node, kept - 1) if kept else 0
    return lengths


def _extents(found: _Source, kept_rows: Mapping[str, int], reader: _Reader) -> dict[str, int]:
    """Kept length of every table dataset, given the rows each table keeps."""
    out: dict[str, int] = {}
    for table in found.tables.values():
        rows = kept_rows[table.path]
        for chain in table.chains:
            for node, length in zip(chain, _chain_lengths(chain, rows, reader), strict=True):
                out[node.name] = length
    return out


def _kept_rows(found: _Source, n: int, reader: _Reader) -> dict[str, int]:
    """Rows each table keeps: ``n``, or more where a kept region points further."""
    kept = {p: (min(n, t.rows) if t.cut else t.rows) for p, t in found.tables.items()}
    changed = True
    while changed:
        changed = False
        extents = _extents(found, kept, reader)
        for region, target in found.regions:
            if target not in found.tables:
                continue
            extent = extents.get(region.name, region.shape[0])
            top = reader.region_max(region, extent)
            if top is None:
                continue
            need = min(top + 1, found.tables[target].rows)
            if need > kept[target]:
                kept[target] = need
                changed = True
        for tie in found.ties:
            members = [t for t in tie if t in kept]
            top = max((kept[t] for t in members), default=0)
            for member in members:
                if kept[member] < top:
                    kept[member] = min(top, found.tables[member].rows)
                    changed = True
    return kept


def _series_needs(found: _Source, extents: Mapping[str, int]) -> dict[str, int]:
    """Samples each referenced TimeSeries must keep for TimeSeriesReferenceVectorData rows."""
    needs: dict[str, int] = {}
    for node in found.ts_references:
        extent = extents.get(node.name, node.shape[0])
        for start in range(0, extent, _SCAN_BLOCK):
            for row in np.asarray(node[start : min(extent, start + _SCAN_BLOCK)]).tolist():
                idx_start, count, ref = row
                if isinstance(ref, Reference) and int(idx_start) >= 0 and int(count) > 0:
                    end = int(idx_start) + int(count)
                    needs[ref.path] = max(needs.get(ref.path, 0), end)
    return needs


def _is_nwb(store: Store) -> bool:
    attrs = store.root.attrs
    return "nwb_version" in attrs or "neurodata_type" in attrs


def plan_truncation(store: Store, n: int) -> TruncationPlan:
    """Decide the kept length of every dataset of ``store`` in a copy keeping ``n`` rows.

    Parameters
    ----------
    store
        The open source store (read only; a few index and region values are read).
    n
        Rows of each table and entries of each time series to keep (at least 0).

    Returns
    -------
    TruncationPlan

    Raises
    ------
    SettingsError
        If ``n`` is not a whole number of rows, 0 or more (a ``ValueError``).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise SettingsError(
            f"truncate: n={n!r} (first_n, -n on the command line) must be a whole number "
            "of rows, 0 or more"
        )
    n = int(n)
    if not _is_nwb(store):
        return TruncationPlan(n=n, source_url=store.url, lengths={}, nwb=False)
    found = _Source()
    _walk(store.root, found)
    reader = _Reader()
    rows = _kept_rows(found, n, reader)
    lengths = _extents(found, rows, reader)
    needs = _series_needs(found, lengths)
    for path, entries in found.series.items():
        keep = max(n, needs.get(path, 0))
        for target in entries.values():
            lengths[target] = max(lengths.get(target, 0), keep)
    shortened = {}
    for path, length in lengths.items():
        node = store.root.get(path)
        if isinstance(node, Dataset) and node.ndim and length < node.shape[0]:
            shortened[path] = length
    return TruncationPlan(
        n=n,
        source_url=store.url,
        lengths=shortened,
        nwb=True,
        table_rows=rows,
        table_sizes={path: table.rows for path, table in found.tables.items()},
        whole_tables=frozenset(path for path, table in found.tables.items() if not table.cut),
    )


def truncate(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    n: int,
    **convert_kwargs: Any,
) -> Any:
    """Write a small, consistent copy of ``src`` keeping ``n`` rows and time entries.

    Tables keep their first ``n`` rows (more where a region points further), time series
    their first ``n`` samples; indexes, regions and electrode tables stay consistent (see
    :func:`plan_truncation`). Chunks shrink to fit.

    Parameters
    ----------
    src, dst
        Source and destination paths or URLs, as for :func:`nwbstore.convert`.
    n
        Rows / time entries to keep.
    **convert_kwargs
        Any other :func:`nwbstore.convert` option (``format``, ``zarr_format``,
        ``storage_options``, ``overwrite``, ``progress``, ...).

    Returns
    -------
    ConversionReport
    """
    from nwbstore.convert.engine import convert

    if "first_n" in convert_kwargs:
        raise TypeError("truncate() takes n, not first_n")
    return convert(src, dst, first_n=n, **convert_kwargs)
