"""What a codec becomes where the destination has no counterpart, and what "portable" means.

Two tables, both pure data:

- :data:`DEFAULT_TRANSCODES`: a codec with no counterpart on the destination backend (LZF,
  Bitshuffle, Blosc2, szip, scale-offset, ...) becomes the closest standard codec, with the
  reason. :func:`plan_pipeline` applies it unless the caller asked for ``strict=True`` (raise)
  or chose an explicit ``fallback``.
- :data:`PORTABLE_RULES`: with ``portable=True`` the result uses only codecs every reader of the
  destination format decodes: Zarr v3 core codecs, Zarr v2 standard compressors without
  filters, or HDF5 filters built into every libhdf5 (no plugins). Which codecs count is the
  ``portable`` column of :data:`~nwbstore.codecs.CODEC_TABLE`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from nwbstore.codecs._adapt import adapt_pipeline, supported_on
from nwbstore.codecs._options import make_spec
from nwbstore.codecs._spec import CodecSpec
from nwbstore.codecs._table import row_by_name
from nwbstore.errors import UnsupportedCodecError

__all__ = [
    "DEFAULT_TRANSCODES",
    "PORTABLE_RULES",
    "PipelinePlan",
    "Transcode",
    "describe_pipeline",
    "non_portable_stages",
    "plan_pipeline",
    "portable_flavour",
    "transcode_table_markdown",
]

Target = Literal["hdf5", "zarr"]
Flavour = Literal["hdf5", "zarr2", "zarr3"]
Opts = Mapping[str, Any]

_BLOSC_CNAMES = ("blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd")


@dataclass(frozen=True)
class Transcode:
    """The default replacement for one codec that has no counterpart on a backend.

    Parameters
    ----------
    codec
        nwbstore name of the source codec.
    target
        The backend that lacks it.
    becomes
        Builds the replacement stages from the source options (``()`` drops the stage: the
        values are stored decoded).
    summary, why
        The replacement and the reason, in words (the docs table).
    """

    codec: str
    target: Target
    becomes: Callable[[Opts], tuple[CodecSpec, ...]]
    summary: str
    why: str


def _zstd(level: int) -> Callable[[Opts], tuple[CodecSpec, ...]]:
    return lambda _o: (make_spec("zstd", {"level": level}),)


def _blosc(cname: str, clevel: int, shuffle: int) -> CodecSpec:
    return make_spec("blosc", {"cname": cname, "clevel": clevel, "shuffle": shuffle})


def _from_bitshuffle(o: Opts) -> tuple[CodecSpec, ...]:
    # hdf5plugin.Bitshuffle options: (nelems, compression id [0 none, 2 lz4, 3 zstd], clevel)
    cd = tuple(o.get("cd_values", ()))
    comp = cd[1] if len(cd) > 1 else 0
    cname = "zstd" if comp == 3 else "lz4"
    clevel = min(max(int(cd[2]), 1), 9) if comp == 3 and len(cd) > 2 else 5
    return (_blosc(cname, clevel, 2),)


def _from_blosc2(o: Opts) -> tuple[CodecSpec, ...]:
    # hdf5plugin.Blosc2 options: (0, 0, 0, 0, clevel, filters, compcode); codes as Blosc 1
    cd = tuple(o.get("cd_values", ()))
    clevel = int(cd[4]) if len(cd) > 4 else 5
    filters = int(cd[5]) if len(cd) > 5 else 1
    code = int(cd[6]) if len(cd) > 6 else 0
    cname = _BLOSC_CNAMES[code] if code < len(_BLOSC_CNAMES) else "lz4"
    shuffle = filters if filters in (0, 1, 2) else 1  # delta/trunc filters: values decoded
    return (_blosc(cname, min(max(clevel, 0), 9), shuffle),)


def _gzip_to_zlib(o: Opts) -> tuple[CodecSpec, ...]:
    return (make_spec("zlib", {"level": int(o.get("level", 5))}),)


def _drop(_o: Opts) -> tuple[CodecSpec, ...]:
    return ()


def _fletcher(_o: Opts) -> tuple[CodecSpec, ...]:
    return (make_spec("fletcher32"),)


_DECODED = "values are decoded on the way, so any standard codec can store them"
_LOSSY = (
    "the values are stored as decoded: the precision the lossy codec kept is what you get, "
    "nothing more is lost"
)

DEFAULT_TRANSCODES: tuple[Transcode, ...] = (
    Transcode(
        "lzf",
        "zarr",
        _zstd(1),
        "zstd(level=1)",
        "LZF is chosen for speed; zstd level 1 is zstd's fastest standard setting, a core "
        "Zarr v3 codec and an HDF5 filter (hdf5plugin), so chunks copy raw between them "
        "afterwards",
    ),
    Transcode(
        "bitshuffle",
        "zarr",
        _from_bitshuffle,
        "blosc(cname=lz4 or zstd as before, shuffle=bit)",
        "Blosc with bit shuffle is the same two steps (bit shuffle, then LZ4/Zstd) in a "
        "framing every Zarr implementation and HDF5 (hdf5plugin Blosc) read; it raw-copies "
        "between them",
    ),
    Transcode(
        "blosc2",
        "zarr",
        _from_blosc2,
        "blosc(same cname, clevel and shuffle)",
        "Blosc 1 has the same compressors and shuffles as Blosc2 and is a core Zarr v3 codec; "
        "Blosc2 frames are not. Blosc2 delta/truncation filters become byte shuffle "
        "(values are decoded)",
    ),
    Transcode(
        "szip",
        "zarr",
        _zstd(3),
        "zstd(level=3)",
        "no Zarr codec writes SZIP; zstd is lossless like SZIP, core in Zarr v3 and an HDF5 "
        "filter (hdf5plugin)",
    ),
    Transcode(
        "scaleoffset",
        "zarr",
        _drop,
        "dropped (+ zstd(level=3) if nothing else compresses)",
        "numcodecs FixedScaleOffset stores other bytes; " + _LOSSY,
    ),
    Transcode(
        "nbit",
        "zarr",
        _drop,
        "dropped (+ zstd(level=3) if nothing else compresses)",
        "N-bit packing is lossless and has no Zarr codec; " + _DECODED,
    ),
    *(
        Transcode(name, "zarr", _zstd(3), "zstd(level=3)", _LOSSY)
        for name in ("zfp", "sz", "sz3", "sperr")
    ),
    *(
        Transcode(name, "zarr", _zstd(3), "zstd(level=3)", "no Zarr codec writes it; " + _DECODED)
        for name in ("fcidecomp", "htj2k")
    ),
    Transcode(
        "gzip",
        "hdf5",
        _gzip_to_zlib,
        "zlib (HDF5 'gzip', same level)",
        "the same deflate compression without the gzip container: HDF5's built-in filter",
    ),
    Transcode(
        "lzma",
        "hdf5",
        _zstd(9),
        "zstd(level=9)",
        "HDF5 has no LZMA filter; zstd at level 9 is the standard high-ratio codec",
    ),
    *(
        Transcode(
            name, "hdf5", _fletcher, "fletcher32", "HDF5's checksum filter; checksums are redone"
        )
        for name in ("crc32c", "crc32", "adler32", "jenkins_lookup3")
    ),
    *(
        Transcode(name, "hdf5", _drop, "dropped", "no HDF5 filter; " + _DECODED)
        for name in ("delta", "astype", "packbits")
    ),
    *(
        Transcode(name, "hdf5", _drop, "dropped", _LOSSY)
        for name in ("fixedscaleoffset", "quantize", "bitround")
    ),
)

_DEFAULTS = {(t.codec, t.target): t for t in DEFAULT_TRANSCODES}

#: What each portable flavour allows, in words (docs and ``nwbstore info``).
PORTABLE_RULES: Mapping[Flavour, str] = {
    "zarr3": "Zarr v3 core codecs only: bytes, transpose, gzip, blosc, zstd, crc32c, "
    "sharding_indexed",
    "zarr2": "Zarr v2 standard compressors (zlib, gzip, blosc, zstd, bz2, lz4) and no filters",
    "hdf5": "HDF5 filters built into every libhdf5 (deflate, shuffle, fletcher32, scale-offset, "
    "n-bit): no plugins, no szip",
}


def portable_flavour(target: Target, zarr_format: int) -> Flavour:
    """The portable rule set of a destination."""
    if target == "hdf5":
        return "hdf5"
    return "zarr2" if zarr_format == 2 else "zarr3"


def describe_pipeline(pipeline: tuple[CodecSpec, ...]) -> str:
    """``shuffle -> zlib(level=4)``, or ``none``."""
    parts = []
    for spec in pipeline:
        opts = ", ".join(f"{k}={v!r}" for k, v in spec.options.items())
        parts.append(f"{spec.name}({opts})" if opts else spec.name)
    return " -> ".join(parts) or "none"


@dataclass(frozen=True)
class PipelinePlan:
    """The pipeline a destination dataset gets, and why it differs from the source's.

    Attributes
    ----------
    pipeline
        The stages to write.
    defaulted
        True when a codec without counterpart was replaced by its default transcode.
    portable
        True when ``portable=True`` changed the pipeline.
    notes
        Stages dropped or replaced, in words.
    """

    pipeline: tuple[CodecSpec, ...]
    defaulted: bool = False
    portable: bool = False
    notes: tuple[str, ...] = ()


def _counterpart_default(
    pipeline: tuple[CodecSpec, ...], target: Target
) -> tuple[tuple[CodecSpec, ...], list[str], bool]:
    """Replace every stage (or option) the target lacks by its default transcode."""
    label = "HDF5" if target == "hdf5" else "Zarr"
    out: list[CodecSpec] = []
    notes: list[str] = []
    dropped_compression = False
    defaulted = False
    for spec in pipeline:
        row = row_by_name(spec.name)
        assert row is not None
        if spec.options.get("stored_header"):
            # ZFP read from a file: only its header is stored, the options cannot be rebuilt
            out.append(make_spec("zstd"))
            notes.append(f"{spec.name} -> zstd: its options are not recoverable from the file")
            defaulted = True
            continue
        if supported_on(row, target):
            fixed = adapt_pipeline((spec,), target, fallback="drop")
            if fixed != (spec,):
                notes.append(f"{spec.name}: options {label} cannot express set to defaults")
                defaulted = True
            out.extend(fixed)
            continue
        rule = _DEFAULTS.get((row.name, target))
        new = rule.becomes(spec.options) if rule else ()
        if rule is None and row.role == "compression":
            new = (make_spec("zstd"),)
        if not new:
            kept = "; lossy precision kept as decoded" if row.lossy else ""
            notes.append(f"{spec.name} dropped: values stored decoded{kept}")
        elif row.lossy:
            notes.append(f"{spec.name}: values stored as decoded (lossy precision kept)")
        defaulted = True
        dropped_compression = dropped_compression or (row.role == "filter" and not new)
        out.extend(new)
    if dropped_compression and not any(_role(s) == "compression" for s in out):
        out.append(make_spec("zstd"))
        notes.append("zstd(level=3) added: the dropped filter was the only compression")
    return tuple(out), notes, defaulted


def _role(spec: CodecSpec) -> str:
    row = row_by_name(spec.name)
    return row.role if row is not None else "compression"


def _level(spec: CodecSpec, lo: int, hi: int, default: int) -> int:
    value = spec.options.get("level", spec.options.get("clevel", default))
    return min(max(int(value), lo), hi) if isinstance(value, int) else default


def _as_blosc(spec: CodecSpec | None, shuffle: int) -> CodecSpec:
    """Blosc keeping ``spec``'s algorithm and level where Blosc has it, with ``shuffle``."""
    if spec is None:
        return _blosc("lz4", 5, shuffle)
    if spec.name == "blosc":
        keep = int(spec.options["shuffle"]) or shuffle
        return _blosc(str(spec.options["cname"]), int(spec.options["clevel"]), keep)
    cname = {"zlib": "zlib", "gzip": "zlib", "zstd": "zstd", "lz4": "lz4"}.get(spec.name, "zstd")
    return _blosc(cname, _level(spec, 0, 9, 5), shuffle)


def _portable_compression(spec: CodecSpec, flavour: Flavour) -> tuple[CodecSpec, ...]:
    """A compression stage allowed in ``flavour`` that is closest to ``spec`` (no shuffle)."""
    if flavour == "hdf5":
        shuffle: tuple[CodecSpec, ...] = ()
        if (spec.name == "blosc" and int(spec.options["shuffle"])) or spec.name == "bitshuffle":
            shuffle = (make_spec("shuffle"),)
        return (*shuffle, make_spec("zlib", {"level": _level(spec, 1, 9, 4)}))
    if spec.name in ("zlib", "gzip") and flavour == "zarr3":
        return (make_spec("gzip", {"level": _level(spec, 0, 9, 5)}),)
    if spec.name == "lz4":
        return (_blosc("lz4", 5, 0),)
    return (make_spec("zstd", {"level": _level(spec, 1, 22, 3) if spec.name == "zstd" else 9}),)


def non_portable_stages(pipeline: tuple[CodecSpec, ...], flavour: Flavour) -> list[CodecSpec]:
    """The stages of ``pipeline`` that break ``flavour``'s rules (:data:`PORTABLE_RULES`).

    Zarr v2 allows one standard compressor and no filters, so every stage of a longer
    pipeline is listed there.
    """
    bad = [s for s in pipeline if flavour not in getattr(row_by_name(s.name), "portable", ())]
    single = len(pipeline) <= 1 and all(_role(s) == "compression" for s in pipeline)
    if flavour == "zarr2" and not bad and not single:
        return list(pipeline)
    return bad


def _portable(
    pipeline: tuple[CodecSpec, ...], flavour: Flavour
) -> tuple[tuple[CodecSpec, ...], list[str]]:
    """Rewrite ``pipeline`` with codecs ``flavour`` allows (see :data:`PORTABLE_RULES`)."""

    def ok(spec: CodecSpec) -> bool:
        row = row_by_name(spec.name)
        return row is not None and flavour in row.portable

    if not non_portable_stages(pipeline, flavour):
        return pipeline, []
    notes: list[str] = []
    filters = [s for s in pipeline if _role(s) == "filter"]
    shuffled = any(_role(s) == "shuffle" for s in pipeline)
    comps = [s for s in pipeline if _role(s) == "compression"]
    checks = [s for s in pipeline if _role(s) == "checksum"]
    comp = comps[-1] if comps else None
    out: list[CodecSpec] = []
    for f in filters:
        if ok(f) and flavour != "zarr2":
            out.append(f)
        else:
            notes.append(f"{f.name} dropped (values are decoded)")
    if flavour == "hdf5":
        if shuffled:
            out.append(make_spec("shuffle"))
        if comp is not None:
            new = (comp,) if ok(comp) else _portable_compression(comp, flavour)
            out.extend(s for s in new if not (shuffled and s.name == "shuffle"))
    elif shuffled and comp is not None:
        out.append(_as_blosc(comp, 1))
        notes.append("shuffle moved into blosc(shuffle=1)")
    elif comp is not None:
        out.extend((comp,) if ok(comp) else _portable_compression(comp, flavour))
    elif shuffled:
        notes.append("shuffle dropped: no compression follows it")
    for c in checks:
        if flavour == "zarr2":
            notes.append(f"{c.name} dropped: Zarr v2 has no standard checksum")
        elif ok(c):
            out.append(c)
        else:
            new_check = make_spec("crc32c" if flavour == "zarr3" else "fletcher32")
            out.append(new_check)
            notes.append(f"{c.name} -> {new_check.name}")
    return tuple(out), notes


def plan_pipeline(
    pipeline: tuple[CodecSpec, ...],
    target: Target,
    *,
    zarr_format: int = 3,
    where: str = "dataset",
    fallback: str | None = None,
    strict: bool = False,
    portable: bool = False,
) -> PipelinePlan:
    """Decide the pipeline written on ``target`` for a source ``pipeline``.

    Parameters
    ----------
    pipeline
        Source stages in application order.
    target, zarr_format
        The destination backend (and Zarr format).
    where
        Names the dataset in error messages.
    fallback
        An explicit choice for stages without counterpart (see
        :func:`~nwbstore.codecs.adapt_pipeline`); it wins over the defaults and ``strict``.
    strict
        Raise :class:`~nwbstore.errors.UnsupportedCodecError` for a stage without
        counterpart instead of using :data:`DEFAULT_TRANSCODES`.
    portable
        Then restrict the result to the destination's portable codecs.
    """
    notes: list[str] = []
    defaulted = False
    if fallback is not None or strict:
        try:
            new = adapt_pipeline(pipeline, target, where=where, fallback=fallback)
        except UnsupportedCodecError as err:
            suggestion = _counterpart_default(pipeline, target)[0]
            raise UnsupportedCodecError(
                f"{str(err).rstrip('.')}. This is an error because of strict=True (CLI "
                "--strict); without it "
                f"the default transcode writes {describe_pipeline(suggestion)}",
                dataset=where,
                target=target,
                default=describe_pipeline(suggestion),
            ) from None
        if new != pipeline:
            notes.append(f"fallback={fallback!r}")
    else:
        new, notes, defaulted = _counterpart_default(pipeline, target)
    changed_portable = False
    if portable:
        before = new
        new, more = _portable(new, portable_flavour(target, zarr_format))
        changed_portable = new != before
        notes.extend(more)
    return PipelinePlan(new, defaulted=defaulted, portable=changed_portable, notes=tuple(notes))


def transcode_table_markdown() -> str:
    """The default-transcode table as Markdown (in ``docs/codecs.md`` and ``docs/convert.md``)."""
    lines = [
        "| codec | missing on | becomes | why |\n",
        "|---|---|---|---|\n",
    ]
    for t in DEFAULT_TRANSCODES:
        where = "HDF5" if t.target == "hdf5" else "Zarr"
        lines.append(f"| `{t.codec}` | {where} | {t.summary} | {t.why} |\n")
    return "".join(lines)
