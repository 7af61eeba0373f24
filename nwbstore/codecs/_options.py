"""Normalise and validate codec options against the table's parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nwbstore.codecs._spec import CodecSpec, freeze
from nwbstore.codecs._table import ALIASES, CODEC_TABLE, CodecRow, row_by_name
from nwbstore.errors import SettingsError

__all__ = ["known_names", "make_spec", "require_row"]


def known_names() -> list[str]:
    """All codec names the table knows (aliases excluded)."""
    return [r.name for r in CODEC_TABLE]


def require_row(name: str, field: str = "compression") -> CodecRow:
    """Return the row for ``name`` or raise a SettingsError listing the known names."""
    if not isinstance(name, str):
        raise SettingsError(f"{field}={name!r} is not a codec name (a string)")
    row = row_by_name(name)
    if row is None:
        raise SettingsError(
            f"{field}={name!r} is not a known codec; choose one of {', '.join(known_names())} "
            f"(aliases: {', '.join(f'{k}->{v}' for k, v in ALIASES.items())})"
        )
    return row


def _from_plugin_kwargs(row: CodecRow, kwargs: Mapping[str, Any], field: str) -> dict[str, Any]:
    import hdf5plugin

    cls = getattr(hdf5plugin, row.extra["hdf5plugin"])
    try:
        return {"cd_values": tuple(int(v) for v in cls(**kwargs).filter_options)}
    except (TypeError, ValueError) as exc:
        raise SettingsError(
            f"{field}={dict(kwargs)!r} is not valid for {row.name} (hdf5plugin.{cls.__name__}): "
            f"{exc}"
        ) from exc


def _as_dict(row: CodecRow, opts: Any, field: str) -> dict[str, Any]:
    if opts is None:
        return {}
    if isinstance(opts, Mapping):
        d = dict(opts)
        if "hdf5plugin" in row.extra and set(d) - {"cd_values", "stored_header"}:
            return _from_plugin_kwargs(row, d, field)
        return d
    if isinstance(opts, bool):
        raise SettingsError(f"{field}={opts!r} for {row.name}: expected a level or a dict")
    if isinstance(opts, int) and row.scalar:
        return {row.scalar: opts}
    if isinstance(opts, tuple | list):
        if "hdf5plugin" in row.extra:
            return {"cd_values": tuple(opts)}
        if row.name == "szip" and len(opts) == 2:  # h5py's ('nn', 8)
            return {"coding": opts[0], "pixels_per_block": opts[1]}
    raise SettingsError(
        f"{field}={opts!r} is not understood for {row.name}; give a dict of "
        f"{', '.join(p.name for p in row.params) or 'no options'}"
        + (f" or an int ({row.scalar})" if row.scalar else "")
    )


def make_spec(name: str, opts: Any = None, *, field: str = "compression") -> CodecSpec:
    """Build a validated :class:`CodecSpec` with defaults filled in.

    Raises
    ------
    SettingsError
        Unknown codec name, unknown option, or an option value breaking its rule.
    """
    row = require_row(name, field)
    ofield = f"{field} options" if field != "compression" else "compression_opts"
    given = _as_dict(row, opts, ofield)
    if row.free_params:  # numcodecs validates and fills in its own defaults
        import numcodecs

        try:
            cfg = numcodecs.get_codec({"id": row.zarr_v2, **given}).get_config()
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{ofield}={given!r} is not valid for {row.name}: {exc}") from exc
        cfg.pop("id", None)
        return CodecSpec(row.name, freeze(cfg))
    allowed = {p.name for p in row.params}
    unknown = set(given) - allowed
    if unknown:
        raise SettingsError(
            f"{ofield} for {row.name}: unknown option(s) {sorted(unknown)}; "
            f"allowed: {sorted(allowed) or 'none'}"
        )
    out: dict[str, Any] = {}
    for p in row.params:
        value = freeze(given.get(p.name, p.default))
        if not p.check(value):
            raise SettingsError(
                f"{ofield} for {row.name}: {p.name}={value!r} breaks the rule: must be {p.rule}"
            )
        out[p.name] = value
    return CodecSpec(row.name, out)
