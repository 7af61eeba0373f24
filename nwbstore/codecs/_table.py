"""The mapping table: every HDF5 filter against the Zarr v2/v3 codec that means the same.

Each :class:`CodecRow` says how the codec is written and read on each side, which options it
takes (with defaults and rules), whether chunks are byte-compatible (a raw chunk copied
across decodes on the other side) and what must be installed. Code looks rows up; it never
branches on codec names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["CODEC_TABLE", "CodecRow", "Param", "row_by_hdf5_id", "row_by_name", "row_by_zarr_id"]

Role = Literal["filter", "shuffle", "compression", "checksum"]
Opts = Mapping[str, Any]


def _int_range(lo: int, hi: int) -> tuple[Callable[[Any], bool], str]:
    def check(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi

    return check, f"an integer from {lo} to {hi}"


def _choice(*choices: Any) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in choices), f"one of {', '.join(repr(c) for c in choices)}"


def _bool() -> tuple[Callable[[Any], bool], str]:
    return (lambda v: isinstance(v, bool)), "True or False"


def _ints() -> tuple[Callable[[Any], bool], str]:
    def check(v: Any) -> bool:
        return isinstance(v, tuple) and all(isinstance(i, int) and i >= 0 for i in v)

    return check, "a sequence of non-negative integers (HDF5 cd_values)"


@dataclass(frozen=True)
class Param:
    """One option of a codec.

    Parameters
    ----------
    name, default
        Option name and the value used when it is not given.
    check, rule
        Validator and its rule in words (used in error messages).
    hdf5, zarr
        Whether the option can be expressed on that side; a non-default value of an option
        the target cannot express is an :class:`~nwbstore.errors.UnsupportedCodecError`.
    """

    name: str
    default: Any
    check: Callable[[Any], bool]
    rule: str
    hdf5: bool = True
    zarr: bool = True


def _p(name: str, default: Any, rule: tuple[Callable[[Any], bool], str], **kw: bool) -> Param:
    return Param(name, default, rule[0], rule[1], **kw)


@dataclass(frozen=True)
class CodecRow:
    """One row of the mapping table (see the module docstring)."""

    name: str
    role: Role
    description: str
    hdf5_id: int | None = None
    hdf5_name: str | None = None
    zarr_v2: str | None = None  # numcodecs codec id
    zarr_v3: str | None = None  # zarr v3 codec name
    zarr_ids: tuple[str, ...] = ()  # ids/names recognised when reading Zarr metadata
    v3_kind: Literal["array", "bytes"] = "bytes"
    raw_copy: bool = False
    lossy: bool = False
    requires: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    free_params: bool = False  # options are passed through to numcodecs unchecked
    scalar: str | None = None  # the option an int ``compression_opts`` sets
    notes: str = ""
    # HDF5: filter options -> cd_values to request, and stored cd_values -> options
    hdf5_encode: Callable[[Opts], tuple[int, ...]] | None = None
    hdf5_decode: Callable[[tuple[int, ...]], dict[str, Any]] | None = None
    # Zarr: options (+ itemsize) -> numcodecs config dict; numcodecs-style config -> options
    zarr_encode: Callable[[Opts, int | None], dict[str, Any]] | None = None
    zarr_decode: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # where the codec is standard: "hdf5" (built into every libhdf5, no plugin), "zarr2" (a
    # standard Zarr v2 compressor), "zarr3" (a core Zarr v3 codec). See ``codecs="portable"``.
    portable: frozenset[str] = frozenset()

    @property
    def has_hdf5(self) -> bool:
        """Whether HDF5 can write this codec."""
        return self.hdf5_id is not None

    @property
    def has_zarr(self) -> bool:
        """Whether Zarr can write this codec."""
        return self.zarr_v2 is not None


# --- converters -----------------------------------------------------------------------------

_BLOSC_CODES = ("blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd")
_BLOSC_SHUFFLE_V3 = ("noshuffle", "shuffle", "bitshuffle")


def _level_only(key: str = "level") -> dict[str, Any]:
    return {
        "hdf5_encode": lambda o: (int(o[key]) & 0xFFFFFFFF,),
        "hdf5_decode": lambda cd: {key: _signed(cd[0])} if cd else {},
    }


def _signed(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


def _blosc_decode_zarr(cfg: Mapping[str, Any]) -> dict[str, Any]:
    shuffle = cfg.get("shuffle", 1)
    if isinstance(shuffle, str):
        shuffle = _BLOSC_SHUFFLE_V3.index(shuffle)
    elif shuffle == -1:  # numcodecs AUTOSHUFFLE: bit shuffle for 1-byte types, else byte shuffle
        shuffle = 1
    return {
        "cname": cfg.get("cname", "lz4"),
        "clevel": int(cfg.get("clevel", 5)),
        "shuffle": int(shuffle),
        "blocksize": int(cfg.get("blocksize", 0)),
    }


def _blosc_encode_hdf5(o: Opts) -> tuple[int, ...]:
    return (0, 0, 0, 0, int(o["clevel"]), int(o["shuffle"]), _BLOSC_CODES.index(o["cname"]))


def _blosc_decode_hdf5(cd: tuple[int, ...]) -> dict[str, Any]:
    clevel = cd[4] if len(cd) > 4 else 5
    shuffle = cd[5] if len(cd) > 5 else 1
    cname = _BLOSC_CODES[cd[6]] if len(cd) > 6 else "blosclz"
    return {"cname": cname, "clevel": clevel, "shuffle": shuffle, "blocksize": 0}


def _blosc_encode_zarr(o: Opts, itemsize: int | None) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "id": "blosc",
        "cname": o["cname"],
        "clevel": o["clevel"],
        "shuffle": o["shuffle"],
        "blocksize": o["blocksize"],
    }
    if itemsize is not None:
        cfg["typesize"] = itemsize
    return cfg


def _plugin(cls_name: str, row_id: int, *, header_only: bool = False) -> dict[str, Any]:
    """Converters for hdf5plugin filters kept as their (normalised) cd_values.

    ``header_only``: the file stores a codec header instead of the requested options (ZFP),
    so settings read from a file cannot be written again without new options.
    """

    def decode(cd: tuple[int, ...]) -> dict[str, Any]:
        import hdf5plugin

        if header_only:
            return {"cd_values": tuple(cd), "stored_header": True}
        try:
            opts = hdf5plugin.from_filter_options(row_id, tuple(cd)).filter_options
        except (ValueError, NotImplementedError, KeyError):  # pragma: no cover
            opts = tuple(cd)
        return {"cd_values": tuple(int(v) for v in opts)}

    def encode(o: Opts) -> tuple[int, ...]:
        if o.get("stored_header"):
            from nwbstore.errors import UnsupportedCodecError

            raise UnsupportedCodecError(
                f"{cls_name} settings read from a file hold only the stored header "
                f"{list(o['cd_values'])}, not the options that made it; give new options, "
                f"e.g. compression_opts={{'rate': 16}} (see hdf5plugin.{cls_name})"
            )
        return tuple(o["cd_values"])

    return {"hdf5_encode": encode, "hdf5_decode": decode, "extra": {"hdf5plugin": cls_name}}


def _simple_zarr(codec_id: str, *keys: str) -> dict[str, Any]:
    return {
        "zarr_encode": lambda o, _i: {"id": codec_id, **{k: o[k] for k in keys}},
        "zarr_decode": lambda cfg: {k: cfg[k] for k in keys if k in cfg},
    }


def _pass_zarr(codec_id: str) -> dict[str, Any]:
    return {
        "zarr_encode": lambda o, _i: {"id": codec_id, **dict(o)},
        "zarr_decode": lambda cfg: {k: v for k, v in cfg.items() if k != "id"},
    }


_CD = _p("cd_values", (), _ints())
_NEEDS_PLUGIN = ("hdf5plugin",)

CODEC_TABLE: tuple[CodecRow, ...] = (
    # --- HDF5 built-in filters ---------------------------------------------------------------
    CodecRow(
        "zlib",
        "compression",
        "deflate (a zlib stream); HDF5 calls it 'gzip'",
        hdf5_id=1,
        hdf5_name="gzip",
        zarr_v2="zlib",
        zarr_v3="numcodecs.zlib",
        zarr_ids=("zlib",),
        raw_copy=True,
        params=(_p("level", 4, _int_range(0, 9)),),
        scalar="level",
        notes="Not Zarr 'gzip' (a gzip container). Re-encoding is byte-identical.",
        **_level_only(),
        **_simple_zarr("zlib", "level"),
        portable=frozenset({"hdf5", "zarr2"}),
    ),
    CodecRow(
        "shuffle",
        "shuffle",
        "byte shuffle (element size from the dtype)",
        hdf5_id=2,
        hdf5_name="shuffle",
        zarr_v2="shuffle",
        zarr_v3="numcodecs.shuffle",
        zarr_ids=("shuffle",),
        raw_copy=True,
        notes="numcodecs needs elementsize = dtype itemsize (its default is 4).",
        hdf5_encode=lambda o: (),
        hdf5_decode=lambda cd: {},
        zarr_encode=lambda o, i: {"id": "shuffle", **({"elementsize": i} if i else {})},
        zarr_decode=lambda cfg: {},
        portable=frozenset({"hdf5"}),
    ),
    CodecRow(
        "fletcher32",
        "checksum",
        "Fletcher-32 checksum (4 trailing bytes)",
        hdf5_id=3,
        hdf5_name="fletcher32",
        zarr_v2="fletcher32",
        zarr_v3="numcodecs.fletcher32",
        zarr_ids=("fletcher32",),
        raw_copy=True,
        hdf5_encode=lambda o: (),
        hdf5_decode=lambda cd: {},
        zarr_encode=lambda o, i: {"id": "fletcher32"},
        zarr_decode=lambda cfg: {},
        portable=frozenset({"hdf5"}),
    ),
    CodecRow(
        "szip",
        "compression",
        "SZIP (CCSDS 121 Rice coding)",
        hdf5_id=4,
        hdf5_name="szip",
        params=(
            _p("coding", "nn", _choice("nn", "ec")),
            _p("pixels_per_block", 8, _choice(*range(2, 33, 2))),
        ),
        notes="imagecodecs Szip(header=True) decodes chunks; no Zarr codec writes it.",
        hdf5_encode=lambda o: (32 if o["coding"] == "nn" else 4, int(o["pixels_per_block"])),
        hdf5_decode=lambda cd: {
            "coding": "nn" if cd[0] & 32 else "ec",
            "pixels_per_block": int(cd[1]),
        },
    ),
    CodecRow(
        "nbit",
        "filter",
        "N-bit packing of reduced-precision types",
        hdf5_id=5,
        hdf5_name="nbit",
        lossy=False,
        notes="No Zarr counterpart: decode through HDF5.",
        hdf5_encode=lambda o: (),
        hdf5_decode=lambda cd: {},
        portable=frozenset({"hdf5"}),
    ),
    CodecRow(
        "scaleoffset",
        "filter",
        "scale-offset (lossy for floats)",
        hdf5_id=6,
        hdf5_name="scaleoffset",
        lossy=True,
        params=(_p("scale_type", 2, _choice(0, 2)), _p("factor", 0, _int_range(0, 2**31 - 1))),
        notes="numcodecs FixedScaleOffset stores other bytes: decode through HDF5.",
        hdf5_encode=lambda o: (int(o["scale_type"]), int(o["factor"])),
        hdf5_decode=lambda cd: {"scale_type": int(cd[0]), "factor": int(cd[1])},
        portable=frozenset({"hdf5"}),
    ),
    CodecRow(
        "lzf",
        "compression",
        "LZF (h5py)",
        hdf5_id=32000,
        hdf5_name="lzf",
        notes="Raw LZF: imagecodecs lzf_decode(header=False) reads chunks; no Zarr codec "
        "writes it.",
        hdf5_encode=lambda o: (),
        hdf5_decode=lambda cd: {},
    ),
    # --- hdf5plugin filters ------------------------------------------------------------------
    CodecRow(
        "blosc",
        "compression",
        "Blosc (1.x)",
        hdf5_id=32001,
        hdf5_name="Blosc",
        zarr_v2="blosc",
        zarr_v3="blosc",
        zarr_ids=("blosc",),
        raw_copy=True,
        requires=_NEEDS_PLUGIN,
        params=(
            _p("cname", "lz4", _choice(*_BLOSC_CODES)),
            _p("clevel", 5, _int_range(0, 9)),
            _p("shuffle", 1, _choice(0, 1, 2)),
            _p("blocksize", 0, _int_range(0, 2**31 - 1), hdf5=False),
        ),
        scalar="clevel",
        notes="Blosc frames describe themselves; shuffle 0/1/2 = none/byte/bit.",
        hdf5_encode=_blosc_encode_hdf5,
        hdf5_decode=_blosc_decode_hdf5,
        zarr_encode=_blosc_encode_zarr,
        zarr_decode=_blosc_decode_zarr,
        portable=frozenset({"zarr2", "zarr3"}),
    ),
    CodecRow(
        "blosc2",
        "compression",
        "Blosc2",
        hdf5_id=32026,
        hdf5_name="Blosc2",
        requires=_NEEDS_PLUGIN,
        params=(_CD,),
        notes="Chunks are Blosc2 frames; no numcodecs codec reads them.",
        **_plugin("Blosc2", 32026),
    ),
    CodecRow(
        "bitshuffle",
        "compression",
        "Bitshuffle (+ optional LZ4/Zstd)",
        hdf5_id=32008,
        hdf5_name="Bitshuffle",
        requires=_NEEDS_PLUGIN,
        params=(_CD,),
        notes="HDF5 block framing differs from numcodecs Blosc bit-shuffle: decode and re-encode.",
        **_plugin("Bitshuffle", 32008),
    ),
    CodecRow(
        "bz2",
        "compression",
        "bzip2",
        hdf5_id=307,
        hdf5_name="BZip2",
        zarr_v2="bz2",
        zarr_v3="numcodecs.bz2",
        zarr_ids=("bz2",),
        raw_copy=True,
        requires=_NEEDS_PLUGIN,
        params=(_p("level", 9, _int_range(1, 9)),),
        scalar="level",
        **_level_only(),
        **_simple_zarr("bz2", "level"),
        portable=frozenset({"zarr2"}),
    ),
    CodecRow(
        "lz4",
        "compression",
        "LZ4",
        hdf5_id=32004,
        hdf5_name="LZ4",
        zarr_v2="lz4",
        zarr_v3="numcodecs.lz4",
        zarr_ids=("lz4",),
        raw_copy=False,
        requires=_NEEDS_PLUGIN,
        params=(
            _p("nbytes", 0, _int_range(0, 2**31 - 1), zarr=False),
            _p("acceleration", 1, _int_range(1, 2**16), hdf5=False),
        ),
        notes="HDF5 LZ4 block framing (imagecodecs Lz4h5) differs from numcodecs LZ4: "
        "chunks are decoded and re-encoded.",
        hdf5_encode=lambda o: (int(o["nbytes"]),),
        hdf5_decode=lambda cd: {"nbytes": int(cd[0]) if cd else 0},
        **_simple_zarr("lz4", "acceleration"),
        portable=frozenset({"zarr2"}),
    ),
    CodecRow(
        "zstd",
        "compression",
        "Zstandard",
        hdf5_id=32015,
        hdf5_name="Zstd",
        zarr_v2="zstd",
        zarr_v3="zstd",
        zarr_ids=("zstd",),
        raw_copy=True,
        requires=_NEEDS_PLUGIN,
        params=(
            _p("level", 3, _int_range(-131072, 22)),
            _p("checksum", False, _bool(), hdf5=False),
        ),
        scalar="level",
        notes="A plain zstd frame on both sides; re-encoding is byte-identical.",
        hdf5_encode=lambda o: (int(o["level"]) & 0xFFFFFFFF,),
        hdf5_decode=lambda cd: {"level": _signed(cd[0]) if cd else 3},
        **_simple_zarr("zstd", "level", "checksum"),
        portable=frozenset({"zarr2", "zarr3"}),
    ),
    CodecRow(
        "zfp",
        "compression",
        "ZFP (lossy modes available)",
        hdf5_id=32013,
        hdf5_name="Zfp",
        requires=_NEEDS_PLUGIN,
        params=(_CD, _p("stored_header", False, _bool())),
        lossy=True,
        notes="The ZFP header lives in cd_values, not in the chunk: decode through HDF5. "
        "Settings read from a file keep that header and need new options to be written.",
        **_plugin("Zfp", 32013, header_only=True),
    ),
    CodecRow(
        "sz",
        "compression",
        "SZ (lossy)",
        hdf5_id=32017,
        hdf5_name="SZ",
        requires=_NEEDS_PLUGIN,
        params=(_CD,),
        lossy=True,
        notes="No safe Zarr decoder (SZ exits the process on a bad chunk).",
        **_plugin("SZ", 32017),
    ),
    CodecRow(
        "sz3",
        "compression",
        "SZ3 (lossy)",
        hdf5_id=32024,
        hdf5_name="SZ3",
        requires=_NEEDS_PLUGIN,
        params=(_CD,),
        lossy=True,
        notes="imagecodecs SZ3 aborts on HDF5 chunks: decode through HDF5.",
        **_plugin("SZ3", 32024),
    ),
    CodecRow(
        "sperr",
        "compression",
        "SPERR (lossy)",
        hdf5_id=32028,
        hdf5_name="Sperr",
        requires=_NEEDS_PLUGIN,
        params=(_CD,),
        lossy=True,
        notes="imagecodecs SPERR aborts on HDF5 chunks: decode through HDF5.",
        **_plugin("Sperr", 32028),
    ),
    CodecRow(
        "fcidecomp",
        "compression",
        "FCIDECOMP (JPEG-LS)",
        hdf5_id=32018,
        hdf5_name="FciDecomp",
        requires=_NEEDS_PLUGIN,
        params=(_CD,),
        notes="imagecodecs Jpegls decodes; no Zarr codec writes the same bytes.",
        **_plugin("FciDecomp", 32018),
    ),
    CodecRow(
        "htj2k",
        "compression",
        "High-throughput JPEG 2000",
        hdf5_id=32033,
        hdf5_name="Htj2k",
        requires=_NEEDS_PLUGIN,
        params=(_CD,),
        notes="imagecodecs Htj2k decodes; no Zarr codec writes the same bytes.",
        **_plugin("Htj2k", 32033),
    ),
    # --- Zarr-only codecs (no HDF5 filter) ---------------------------------------------------
    CodecRow(
        "gzip",
        "compression",
        "gzip container (Zarr 'gzip')",
        zarr_v2="gzip",
        zarr_v3="gzip",
        zarr_ids=("gzip",),
        params=(_p("level", 5, _int_range(0, 9)),),
        scalar="level",
        notes="Not HDF5 'gzip' (a zlib stream): to HDF5 it is a transcode (fallback='zlib').",
        **_simple_zarr("gzip", "level"),
        portable=frozenset({"zarr2", "zarr3"}),
    ),
    CodecRow(
        "lzma",
        "compression",
        "LZMA / xz",
        zarr_v2="lzma",
        zarr_v3="numcodecs.lzma",
        zarr_ids=("lzma",),
        free_params=True,
        **_pass_zarr("lzma"),
    ),
    CodecRow(
        "crc32c",
        "checksum",
        "CRC-32C checksum",
        zarr_v2="crc32c",
        zarr_v3="crc32c",
        zarr_ids=("crc32c",),
        **_pass_zarr("crc32c"),
        portable=frozenset({"zarr3"}),
    ),
    CodecRow(
        "crc32",
        "checksum",
        "CRC-32 checksum",
        zarr_v2="crc32",
        zarr_v3="numcodecs.crc32",
        zarr_ids=("crc32",),
        free_params=True,
        **_pass_zarr("crc32"),
    ),
    CodecRow(
        "adler32",
        "checksum",
        "Adler-32 checksum",
        zarr_v2="adler32",
        zarr_v3="numcodecs.adler32",
        zarr_ids=("adler32",),
        free_params=True,
        **_pass_zarr("adler32"),
    ),
    CodecRow(
        "jenkins_lookup3",
        "checksum",
        "Jenkins lookup3 checksum",
        zarr_v2="jenkins_lookup3",
        zarr_v3="numcodecs.jenkins_lookup3",
        zarr_ids=("jenkins_lookup3",),
        free_params=True,
        **_pass_zarr("jenkins_lookup3"),
    ),
    *(
        CodecRow(
            cid,
            "filter",
            f"numcodecs {cls} filter",
            zarr_v2=cid,
            zarr_v3=f"numcodecs.{cid}",
            zarr_ids=(cid,),
            v3_kind="array",
            free_params=True,
            lossy=lossy,
            **_pass_zarr(cid),
        )
        for cid, cls, lossy in (
            ("delta", "Delta", False),
            ("fixedscaleoffset", "FixedScaleOffset", True),
            ("quantize", "Quantize", True),
            ("bitround", "BitRound", True),
            ("astype", "AsType", False),
            ("packbits", "PackBits", False),
        )
    ),
)

_BY_NAME = {r.name: r for r in CODEC_TABLE}
_BY_HDF5 = {r.hdf5_id: r for r in CODEC_TABLE if r.hdf5_id is not None}
_BY_ZARR = {zid: r for r in CODEC_TABLE for zid in r.zarr_ids}
# names users may type for the same codec (h5py/hdf5plugin spellings)
ALIASES = {"deflate": "zlib", "bzip2": "bz2", "blosc1": "blosc"}


def row_by_name(name: str) -> CodecRow | None:
    """Return the row for an nwbstore codec name (or an alias such as 'deflate')."""
    return _BY_NAME.get(ALIASES.get(name.lower(), name.lower()))


def row_by_hdf5_id(filter_id: int) -> CodecRow | None:
    """Return the row for an HDF5 filter id."""
    return _BY_HDF5.get(int(filter_id))


def row_by_zarr_id(codec_id: str) -> CodecRow | None:
    """Return the row for a numcodecs codec id or zarr v3 codec name (``numcodecs.`` removed)."""
    return _BY_ZARR.get(codec_id.removeprefix("numcodecs."))
