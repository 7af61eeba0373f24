"""Find the datasets of an in-memory NWBFile and where each lives (its *location*).

Locations follow NeuroConv: the container path below the NWBFile (``acquisition/ts``,
``processing/ecephys/LFP/ElectricalSeries``, ``trials``, ``units``) then the field
(``data``, ``timestamps``); a table column is ``<table>/<column>/data``. What is walked:
the ``data`` and ``timestamps`` fields of every container (TimeSeries and extensions), the
columns of every ``DynamicTable`` (``VectorData`` and ``VectorIndex``), and other ``Data``
objects (e.g. ``Image``). Table ids, region columns and ``ImageSeries`` data stored in
``external_file`` are not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Candidate", "iter_candidates", "location_of"]


@dataclass(frozen=True)
class Candidate:
    """One dataset field: the object holding it, the field name, its location and value."""

    container: Any
    field: str  # "data" for a Data object (VectorData, ...), else the container's field name
    location: str
    value: Any


def location_of(obj: Any) -> str:
    """The path of a container below its NWBFile (``acquisition/ts``, ``trials``)."""
    from pynwb import NWBFile

    parts: list[str] = []
    node: Any = obj
    while node is not None and not isinstance(node, NWBFile):
        parent: Any = node.parent
        name: str = node.name
        if isinstance(parent, NWBFile):
            # a field holding the object itself (`trials`, `units`) wins over a dict holding it
            # (`intervals` also holds the trials of a file read back)
            fields = parent.fields
            direct = [f for f, value in fields.items() if value is node]
            held = [f for f, v in fields.items() if isinstance(v, dict) and v.get(name) is node]
            if direct:
                parts.append(direct[0])
            elif held:
                parts.extend([name, held[0]])
            else:
                parts.append(name)
            break
        parts.append(name)
        node = parent
    return "/".join(reversed(parts))


def iter_candidates(nwbfile: Any) -> Iterator[Candidate]:
    """Every dataset field of ``nwbfile`` that configuration considers, in a stable order."""
    from hdmf.common import DynamicTable, DynamicTableRegion, ElementIdentifiers
    from hdmf.container import Container, Data
    from pynwb.image import ImageSeries

    seen: set[int] = set()
    for obj in nwbfile.all_children():
        if isinstance(obj, DynamicTable):
            base = location_of(obj)
            for column in obj.columns:
                seen.add(id(column))
                if isinstance(column, DynamicTableRegion):
                    continue  # references into another table
                yield Candidate(column, "data", f"{base}/{column.name}/data", column.data)
    for obj in nwbfile.all_children():
        if id(obj) in seen:
            continue
        if isinstance(obj, Data):
            if isinstance(obj, DynamicTableRegion | ElementIdentifiers):
                continue
            if isinstance(obj.parent, DynamicTable):
                continue  # a table's own dataset that is not a column
            yield Candidate(obj, "data", f"{location_of(obj)}/data", obj.data)
            continue
        if not isinstance(obj, Container):
            continue
        external = isinstance(obj, ImageSeries) and obj.fields.get("external_file") is not None
        for field in ("data", "timestamps"):
            if field == "data" and external:
                continue  # frames live in external files; `data` is a placeholder
            if field in obj.fields:
                yield Candidate(obj, field, f"{location_of(obj)}/{field}", obj.fields[field])
