"""What a conversion did: counts, bytes, raw vs transcoded chunks, anything dropped."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["ConversionReport"]


@dataclass
class ConversionReport:
    """The result of :func:`nwbstore.convert`.

    Attributes
    ----------
    source, destination
        URLs of the two stores.
    groups, datasets, attributes
        Objects created in the destination; ``groups`` counts the groups below the root, as
        h5py's ``visititems``, :class:`~nwbstore.verify.VerifyReport` and ``nwbstore info``
        count them.
    soft_links, external_links
        Links created in the destination (resolved external links count in ``resolved_links``).
    references
        Object references written (attributes, reference datasets and compound fields).
    bytes_read, bytes_written
        Stored (encoded) bytes moved by raw copies plus decoded bytes moved by transcodes.
    chunks_raw, chunks_transcoded
        Chunks copied without decoding, and chunks decoded and re-encoded.
    chunks_skipped
        With ``resume=True`` on object storage: stored chunks (or transcoded blocks) found in
        the destination, written after the interrupted run's last checkpoint, not uploaded
        again.
    datasets_raw
        Paths of datasets copied entirely as stored chunks.
    resolved_links
        External links whose data was copied in (``links="resolve"``).
    converted_targets
        Other stores converted because an external link pointed into another format.
    broken_links
        Links whose target could not be found (reported, kept as links).
    dropped
        Anything left out on request, with the reason.
    transcoded_codecs
        Datasets whose codecs changed, as ``(dataset, source, target, reason)`` tuples
        (:class:`~nwbstore.convert.plan.TranscodedCodec`): codecs without counterpart on the
        destination (default transcodes), ``codecs="portable"`` rewrites and ``fallback=``.
    unpickled
        Source datasets decoded from the legacy Pickle codec (``allow_pickle=True``); the
        destination holds them as plain strings, references or records.
    resume_note
        With ``resume=True``: what was resumed, or that the destination was already complete,
        or that an unreadable ``.partial`` was restarted from the start.
    upload
        For an HDF5 destination on object storage: where the file was written locally and how
        it was uploaded (the key appears only once the file is whole). ``""`` otherwise.
    truncated
        For a truncated copy (``first_n``): rows each cut table keeps, and how many datasets
        were shortened.
    seconds
        Wall time.
    """

    source: str
    destination: str
    groups: int = 0
    datasets: int = 0
    attributes: int = 0
    soft_links: int = 0
    external_links: int = 0
    references: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    chunks_raw: int = 0
    chunks_transcoded: int = 0
    chunks_skipped: int = 0
    datasets_raw: list[str] = field(default_factory=list)
    resolved_links: list[str] = field(default_factory=list)
    converted_targets: list[str] = field(default_factory=list)
    broken_links: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    unpickled: list[str] = field(default_factory=list)
    resume_note: str = ""
    upload: str = ""
    truncated: list[str] = field(default_factory=list)
    transcoded_codecs: list[Any] = field(default_factory=list)
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_chunks(
        self,
        *,
        raw: int = 0,
        transcoded: int = 0,
        read: int = 0,
        written: int = 0,
        skipped: int = 0,
    ) -> None:
        """Thread-safe counters for the chunk copiers."""
        with self._lock:
            self.chunks_skipped += skipped
            self.chunks_raw += raw
            self.chunks_transcoded += transcoded
            self.bytes_read += read
            self.bytes_written += written

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the report."""
        out = {
            f.name: list(v) if isinstance(v := getattr(self, f.name), list) else v
            for f in fields(self)
            if f.name != "_lock"
        }
        out["transcoded_codecs"] = [
            dict(zip(("dataset", "source", "target", "reason"), item, strict=True))
            for item in self.transcoded_codecs
        ]
        return out

    def __str__(self) -> str:
        lines = [
            f"converted {self.source} -> {self.destination} in {self.seconds:.2f} s",
            f"  groups {self.groups}, datasets {self.datasets}, attributes {self.attributes}",
            f"  soft links {self.soft_links}, external links {self.external_links}, "
            f"references {self.references}",
            f"  chunks copied raw {self.chunks_raw}, transcoded {self.chunks_transcoded} "
            f"({len(self.datasets_raw)} of {self.datasets} datasets entirely raw)",
            f"  bytes read {self.bytes_read / 1e6:.2f} MB, "
            f"written {self.bytes_written / 1e6:.2f} MB",
        ]
        transcoded = [f"{d}: {a} -> {b} ({why})" for d, a, b, why in self.transcoded_codecs]
        if self.resume_note:
            lines.append(f"  {self.resume_note}")
        if self.chunks_skipped:
            lines.append(
                f"  {self.chunks_skipped} chunks already in the destination were not uploaded again"
            )
        if self.upload:
            lines.append(f"  {self.upload}")
        for title, items in (
            ("resolved external links", self.resolved_links),
            ("converted link targets", self.converted_targets),
            ("broken links", self.broken_links),
            ("dropped", self.dropped),
            ("decoded from Pickle (no code run)", self.unpickled),
            ("truncated", self.truncated),
            ("codecs transcoded", transcoded),
        ):
            if items:
                lines.append(f"  {title}:")
                lines.extend(f"    - {item}" for item in items)
        return "\n".join(lines)
