"""Build zarr codec objects from table specs, and read specs back from a zarr array."""

from __future__ import annotations

from typing import Any

from nwbstore.codecs._options import make_spec
from nwbstore.codecs._spec import CodecSpec
from nwbstore.codecs._table import CodecRow, row_by_name, row_by_zarr_id
from nwbstore.errors import PickleRefusedError, SettingsError, UnsupportedCodecError

__all__ = ["specs_from_zarr", "zarr_codec_kwargs"]

# serializers/object codecs that carry the dtype, not compression: settings leave them to zarr
_SERIALIZERS = {"bytes", "vlen-utf8", "vlen-bytes", "vlen-array", "json2", "msgpack2"}


def _config_of(codec: Any) -> tuple[str, dict[str, Any]]:
    """``(id, config)`` of a numcodecs codec or a zarr v3 codec, ``numcodecs.`` removed."""
    if hasattr(codec, "get_config") and hasattr(codec, "codec_id"):
        cfg = dict(codec.get_config())
        return str(cfg.pop("id")), cfg
    d = codec.to_dict()
    name = str(d["name"]).removeprefix("numcodecs.")
    cfg = dict(d.get("configuration") or {})
    cfg.pop("id", None)
    return name, cfg


def _v3_codecs_classes() -> dict[str, type]:
    import zarr.codecs.numcodecs as zn

    out: dict[str, type] = {}
    for attr in zn.__all__:
        cls = getattr(zn, attr)
        name = getattr(cls, "codec_name", None)
        if isinstance(name, str) and name.startswith("numcodecs."):
            out[name] = cls
    return out


def _v3_codec(row: CodecRow, cfg: dict[str, Any]) -> Any:
    from zarr.codecs import BloscCodec, Crc32cCodec, GzipCodec, ZstdCodec

    cfg = {k: v for k, v in cfg.items() if k != "id"}
    if row.zarr_v3 == "zstd":
        return ZstdCodec(**cfg)
    if row.zarr_v3 == "gzip":
        return GzipCodec(**cfg)
    if row.zarr_v3 == "crc32c":
        return Crc32cCodec()
    if row.zarr_v3 == "blosc":
        shuffle = ("noshuffle", "shuffle", "bitshuffle")[int(cfg.pop("shuffle"))]
        return BloscCodec(shuffle=shuffle, **cfg)  # type: ignore[arg-type]
    cls = _v3_codecs_classes().get(str(row.zarr_v3))
    if cls is None:
        raise UnsupportedCodecError(
            f"codec {row.name!r}: zarr {row.zarr_v3!r} is not available in this zarr version"
        )
    return cls(**cfg)


def zarr_codec_kwargs(
    pipeline: tuple[CodecSpec, ...], zarr_format: int, itemsize: int | None
) -> dict[str, Any]:
    """``filters``/``compressors`` keyword arguments for ``zarr.Group.create_array``.

    Zarr v2: every stage but the last is a filter, the last is the compressor. Zarr v3:
    array-to-array stages are filters, byte stages are compressors (after the ``bytes``
    serializer). An empty pipeline gives ``compressors=None``: zarr adds no default.
    """
    configs = []
    for spec in pipeline:
        row = row_by_name(spec.name)
        assert row is not None
        if row.zarr_encode is None:
            raise UnsupportedCodecError(f"codec {spec.name!r} has no Zarr counterpart")
        configs.append((row, row.zarr_encode(spec.options, itemsize)))
    if zarr_format == 2:
        import numcodecs

        if any(r.name == "shuffle" for r, _ in configs) and itemsize is None:
            raise SettingsError(
                "shuffle on Zarr format 2 needs the element size: pass dtype= to to_zarr()"
            )
        objs = [numcodecs.get_codec(dict(cfg)) for _, cfg in configs]
        return {
            "filters": objs[:-1] or None,
            "compressors": objs[-1:] or None,
        }
    filters: list[Any] = []
    compressors: list[Any] = []
    for row, cfg in configs:
        codec = _v3_codec(row, dict(cfg))
        if row.v3_kind == "array":
            if compressors:
                raise SettingsError(
                    f"Zarr format 3 cannot apply array filter {row.name!r} after byte codec "
                    f"{compressors[-1]!r}: reorder filters so array filters come first"
                )
            filters.append(codec)
        else:
            compressors.append(codec)
    return {"filters": filters or None, "compressors": compressors or None}


def specs_from_zarr(array: Any, fallback: str | None = None) -> list[CodecSpec]:
    """Map a zarr array's codec pipeline (v2 or v3) to table specs in application order."""
    codecs: list[Any] = [*array.filters, *array.compressors]
    itemsize = getattr(array.dtype, "itemsize", None)
    specs: list[CodecSpec] = []
    where = f"zarr array {getattr(array, 'path', '?')!r} in {getattr(array, 'store', '?')}"
    for codec in codecs:
        cid, cfg = _config_of(codec)
        if cid in _SERIALIZERS:
            continue
        if cid == "pickle":
            raise PickleRefusedError(
                f"{where} uses the Pickle codec; nwbstore never executes pickled data"
            )
        row = row_by_zarr_id(cid)
        problem = None
        if row is None or row.zarr_decode is None:
            problem = "is not in nwbstore's codec table"
        elif row.name == "shuffle" and cfg.get("elementsize") not in (None, itemsize):
            problem = f"shuffles {cfg['elementsize']}-byte elements of a {itemsize}-byte dtype"
        if problem is not None or row is None or row.zarr_decode is None:
            if fallback is None:
                raise UnsupportedCodecError(
                    f"{where}: codec {cid!r} with options {cfg} {problem}; pass "
                    "fallback='<codec>' to transcode (e.g. 'zstd') or fallback='drop' to "
                    "store it without this codec"
                )
            if fallback != "drop":
                specs.append(make_spec(fallback, field="fallback"))
            continue
        specs.append(make_spec(row.name, row.zarr_decode(cfg), field=f"zarr codec {cid!r}"))
    return specs
