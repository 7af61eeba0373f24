"""Data types and attribute values between nwbstore and Zarr (hdmf-zarr conventions).

Storage forms (what hdmf-zarr 0.14 writes for Zarr v3, and what ZarrV2IO reads for v2):

- ``string_dtype()``: v3 ``string`` (vlen-utf8) with ``_DTYPE="str"``; v2 ``|O`` + VLenUTF8
  with ``zarr_dtype="str"``.
- ``reference_dtype``: v3 ``string`` of paths with ``_DTYPE="object_reference"``; v2 ``|O`` +
  VLenUTF8 of JSON ``{"source", "path"}`` with ``zarr_dtype="object"``.
- compound with text/reference fields: a structured dtype whose ``U<n>`` fields hold the text
  or the paths; reference fields are listed in ``_REFERENCE_FIELDS`` (both formats).

The Pickle codec is never written, and reading an array that declares it is refused unless
the caller opts in (``allow_pickle=True``): then :mod:`nwbstore.backends._zarr_pickled` decodes
it without executing anything.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from nwbstore.dtypes import is_reference_dtype, is_string_dtype, reference_dtype, string_dtype
from nwbstore.errors import PickleRefusedError, SettingsError, UnsupportedDtypeError
from nwbstore.links import REFERENCE_DTYPE_MARK, Reference

__all__ = [
    "COMPOUND_MIN_STRING_LENGTH",
    "HIDDEN_ATTRS",
    "MAXSHAPE_ATTR",
    "decode_attr",
    "encode_attr",
    "from_storage",
    "logical_dtype",
    "marker_attrs",
    "reference_from_value",
    "storage_dtype",
    "to_storage",
]

#: Bookkeeping attributes of the hdmf-zarr conventions; never shown through ``attrs``.
HIDDEN_ATTRS = frozenset(
    {
        "_LINKS",
        "zarr_link",
        "_DTYPE",
        "_REFERENCE_FIELDS",
        "zarr_dtype",
        "_NWBSTORE_MAXSHAPE",
        "_NWBSTORE_WRITER",  # nwbstore.backends._object_writes.WRITER_ATTR
    }
)

#: nwbstore's own attribute keeping a declared, limited ``maxshape`` (Zarr has none).
MAXSHAPE_ATTR = "_NWBSTORE_MAXSHAPE"

#: Smallest width of a text or reference field in a compound (hdmf-zarr 0.14 uses the same, so
#: rows with longer values can be appended later).
COMPOUND_MIN_STRING_LENGTH = 512


# -- dtypes ---------------------------------------------------------------------------------


def _compound_text_fields(dt: np.dtype[Any]) -> list[str]:
    return [n for n in dt.names or () if dt.fields[n][0].kind == "O"]  # type: ignore[index]


def storage_dtype(dt: np.dtype[Any], data: np.ndarray | None, where: str) -> Any:
    """The dtype to hand to ``zarr.create_array`` for the nwbstore dtype ``dt``."""
    if is_string_dtype(dt) or is_reference_dtype(dt):
        return str
    if dt.names is not None:
        fields: list[tuple[str, Any]] = []
        for name in dt.names:
            sub = dt.fields[name][0]  # type: ignore[index]
            if sub.kind == "O":
                longest = 0
                if data is not None and data.size:
                    longest = max(len(_field_text(v, sub)) for v in np.ravel(data[name]))
                fields.append((name, f"<U{max(longest, COMPOUND_MIN_STRING_LENGTH)}"))
            elif sub.names is not None:
                raise UnsupportedDtypeError(
                    f"cannot store {where}: nested compound field {name!r} ({sub}) has no "
                    "hdmf-zarr form; flatten the compound type"
                )
            else:
                fields.append((name, sub))
        return np.dtype(fields)
    return dt


def marker_attrs(dt: np.dtype[Any], zarr_format: int) -> dict[str, Any]:
    """Hidden attributes hdmf-zarr expects on a dataset of dtype ``dt``."""
    key = "_DTYPE" if zarr_format == 3 else "zarr_dtype"
    if dt.names is not None:
        refs = [n for n in dt.names if is_reference_dtype(dt.fields[n][0])]  # type: ignore[index]
        return {"_REFERENCE_FIELDS": refs} if refs else {}
    if is_reference_dtype(dt):
        return {key: REFERENCE_DTYPE_MARK if zarr_format == 3 else "object"}
    if is_string_dtype(dt):
        return {key: "str"}
    return {key: dt.type.__name__}


def logical_dtype(stored: Any, attrs: dict[str, Any]) -> np.dtype[Any]:
    """The nwbstore dtype of a Zarr array of dtype ``stored`` with attributes ``attrs``."""
    marker = attrs.get("_DTYPE", attrs.get("zarr_dtype"))
    if marker in (REFERENCE_DTYPE_MARK, "object") and _is_text(stored):
        return reference_dtype
    if _is_text(stored):
        return string_dtype()
    dt = np.dtype(stored)
    if dt.names is not None:
        refs = set(attrs.get("_REFERENCE_FIELDS") or ())
        fields = []
        for name in dt.names:
            sub = dt.fields[name][0]
            if name in refs:
                fields.append((name, reference_dtype))
            elif sub.kind in "UO":
                fields.append((name, string_dtype()))
            else:
                fields.append((name, sub))
        return np.dtype(fields)
    return dt


def _is_text(dt: Any) -> bool:
    return isinstance(dt, np.dtypes.StringDType) or np.dtype(dt).kind in "UO"


# -- values ---------------------------------------------------------------------------------


def _field_text(value: Any, dt: np.dtype[Any]) -> str:
    if is_reference_dtype(dt):
        return _ref_path(value)
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8")
    return "" if value is None else str(value)


def _ref_path(value: Any) -> str:
    if isinstance(value, Reference):
        if value.source != ".":
            raise UnsupportedDtypeError(
                f"a compound field can only hold references inside the same store, not {value}"
            )
        return value.path
    if isinstance(value, str):
        return Reference(value).path
    raise UnsupportedDtypeError(f"expected a nwbstore.Reference, got {value!r}")


def _ref_text(value: Any, zarr_format: int) -> str:
    ref = value if isinstance(value, Reference) else Reference(str(value))
    if zarr_format == 2 or ref.source != ".":
        return json.dumps({"source": ref.source, "path": ref.path})
    return ref.path


def _parse_ref(text: Any) -> Reference:
    text = str(text)
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            return Reference(text)
        return reference_from_dict(obj)
    return Reference(text)


def reference_from_dict(obj: dict[str, Any]) -> Reference:
    """The reference an hdmf-zarr 0.13 reference object ``{"source", "path", ...}`` names."""
    return Reference(path=obj.get("path", "/") or "/", source=obj.get("source", ".") or ".")


def reference_from_value(value: Any) -> Reference:
    """A reference from a stored value: a path, hdmf-zarr 0.13 JSON text or its dict form."""
    if isinstance(value, Reference):
        return value
    if isinstance(value, dict):
        return reference_from_dict(value)
    return _parse_ref(value)


def to_storage(value: Any, dt: np.dtype[Any], stored: Any, zarr_format: int, where: str) -> Any:
    """Convert user values of nwbstore dtype ``dt`` into what the Zarr array stores."""
    if is_reference_dtype(dt):
        arr = np.asarray(value, dtype=object)
        out = np.vectorize(lambda v: _ref_text(v, zarr_format), otypes=[object])(arr)
        return np.asarray(out, dtype=np.dtypes.StringDType()) if arr.size else _empty_text(arr)
    if is_string_dtype(dt):
        arr = np.asarray(value, dtype=object)
        if not arr.size:
            return _empty_text(arr)
        out = np.vectorize(lambda v: _field_text(v, dt), otypes=[object])(arr)
        return np.asarray(out, dtype=np.dtypes.StringDType())
    if dt.names is not None and _compound_text_fields(dt):
        src = np.asarray(value)
        out = np.empty(src.shape, dtype=stored)
        for name in dt.names:
            sub = dt.fields[name][0]  # type: ignore[index]
            if sub.kind != "O":
                out[name] = src[name]
                continue
            width = stored.fields[name][0].itemsize // 4
            texts = [_field_text(v, sub) for v in np.ravel(src[name])]
            too_long = [t for t in texts if len(t) > width]
            if too_long:
                raise SettingsError(
                    f"cannot write to {where}: field {name!r} holds at most {width} characters "
                    f"and a value has {len(too_long[0])}; write the dataset anew to widen it"
                )
            out[name] = np.asarray(texts, dtype=stored.fields[name][0]).reshape(src.shape)
        return out
    return value


def _empty_text(arr: np.ndarray) -> np.ndarray:
    return np.empty(arr.shape, dtype=np.dtypes.StringDType())


def from_storage(raw: Any, dt: np.dtype[Any]) -> Any:
    """Convert what zarr returned into nwbstore values (str, Reference, object arrays)."""
    if is_reference_dtype(dt):
        arr = np.asarray(raw, dtype=object)
        if arr.ndim == 0:
            return _parse_ref(arr[()])
        out = np.empty(arr.shape, dtype=object)
        for idx, v in np.ndenumerate(arr):
            out[idx] = _parse_ref(v)
        return out
    if is_string_dtype(dt):
        arr = np.asarray(raw)
        if arr.ndim == 0:
            return str(arr[()])
        return arr.astype(object)
    if dt.names is not None and _compound_text_fields(dt):
        src = np.asarray(raw)
        out = np.empty(src.shape, dtype=dt)
        for name in dt.names:
            sub = dt.fields[name][0]  # type: ignore[index]
            if is_reference_dtype(sub):
                refs = np.empty(src.shape, dtype=object)
                for idx, v in np.ndenumerate(src[name]):
                    refs[idx] = _parse_ref(v)
                out[name] = refs
            elif sub.kind == "O":
                out[name] = np.asarray(src[name]).astype(str).astype(object)
            else:
                out[name] = src[name]
        return out[()] if out.ndim == 0 else out
    return raw


# -- attributes -----------------------------------------------------------------------------


def encode_attr(value: Any, zarr_format: int, where: str) -> Any:
    """Turn an attribute value into JSON (references in the hdmf-zarr form of the format)."""
    if isinstance(value, Reference):
        if zarr_format == 3:
            return value.to_zarr_attr()
        return {"zarr_dtype": "object", "value": {"source": value.source, "path": value.path}}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "V":
            raise UnsupportedDtypeError(
                f"cannot store compound attribute {where}: JSON has no record type; "
                "store it as a dataset"
            )
        return (
            [encode_attr(v, zarr_format, where) for v in value.tolist()]
            if value.ndim
            else (encode_attr(value[()], zarr_format, where))
        )
    if isinstance(value, (bytes, np.bytes_)):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as err:
            raise UnsupportedDtypeError(
                f"cannot store attribute {where}: {value!r} is not UTF-8 text, and JSON "
                "attributes hold text only"
            ) from err
    if isinstance(value, np.generic):
        return encode_attr(value.item(), zarr_format, where)
    if isinstance(value, (list, tuple)):
        return [encode_attr(v, zarr_format, where) for v in value]
    if isinstance(value, dict):
        return {str(k): encode_attr(v, zarr_format, where) for k, v in value.items()}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise UnsupportedDtypeError(
        f"cannot store attribute {where} of type {type(value).__name__}: use str, numbers, bools, "
        "lists, NumPy arrays or nwbstore.Reference"
    )


def decode_attr(value: Any) -> Any:
    """Turn a JSON attribute value into nwbstore's value (arrays for lists, References)."""
    ref = Reference.from_zarr_attr(value)
    if ref is not None:
        return ref
    if isinstance(value, list):
        items = [decode_attr(v) for v in value]
        if items and all(isinstance(v, (str, Reference)) for v in items):
            out = np.empty(len(items), dtype=object)
            out[:] = items
            return out
        try:
            arr = np.asarray(items)
        except ValueError:  # ragged
            arr = np.empty(len(items), dtype=object)
            arr[:] = items
        return arr
    return value


# -- pickle ---------------------------------------------------------------------------------


def declares_pickle(metadata: Any) -> bool:
    """True if zarr array metadata (object or JSON dict) lists a Pickle codec."""
    text = json.dumps(metadata, default=_codec_json) if isinstance(metadata, dict) else None
    if text is None:
        codecs: list[Any] = []
        if getattr(metadata, "zarr_format", 3) == 2:
            codecs = [metadata.compressor, *(metadata.filters or ())]
        else:
            codecs = list(getattr(metadata, "codecs", ()) or ())
        text = json.dumps([_codec_json(c) for c in codecs if c is not None], default=str)
    return '"pickle"' in text or "numcodecs.pickle" in text


def _codec_json(codec: Any) -> Any:
    for attr in ("get_config", "to_dict"):
        fn = getattr(codec, attr, None)
        if callable(fn):
            try:
                return fn()
            except Exception:  # pragma: no cover - best effort
                continue
    return {"id": getattr(codec, "codec_id", str(codec))}


def refuse_pickle(where: str) -> PickleRefusedError:
    """The error for an array that declares the Pickle codec."""
    return PickleRefusedError(
        f"{where} is encoded with the Pickle codec (hdmf-zarr <= 0.13 object arrays); nwbstore "
        "does not read it by default, because unpickling can run arbitrary code. If you trust "
        "the source, pass allow_pickle=True (CLI: --allow-pickle): nwbstore then decodes only "
        "plain values (text, numbers, lists, dicts, references) without running any code. Or "
        "re-create it with hdmf-zarr >= 0.14 or nwbstore (JSON/string encodings)."
    )
