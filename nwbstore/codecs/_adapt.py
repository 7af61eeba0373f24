"""Check that a pipeline can be written on a target backend, applying an explicit fallback."""

from __future__ import annotations

from typing import Literal

from nwbstore.codecs._options import make_spec
from nwbstore.codecs._spec import CodecSpec
from nwbstore.codecs._table import CodecRow, row_by_name
from nwbstore.errors import SettingsError, UnsupportedCodecError

__all__ = ["adapt_pipeline", "supported_on"]

Target = Literal["hdf5", "zarr"]


def supported_on(row: CodecRow, target: Target) -> bool:
    """Whether the row's codec can be written on ``target``."""
    return row.has_hdf5 if target == "hdf5" else row.has_zarr


def _choices(target: Target) -> str:
    from nwbstore.codecs._table import CODEC_TABLE

    names = [r.name for r in CODEC_TABLE if r.role == "compression" and supported_on(r, target)]
    return ", ".join(repr(n) for n in names)


def adapt_pipeline(
    pipeline: tuple[CodecSpec, ...],
    target: Target,
    *,
    where: str = "dataset",
    fallback: str | None = None,
) -> tuple[CodecSpec, ...]:
    """Return ``pipeline`` as written on ``target``, or raise if something has no counterpart.

    Parameters
    ----------
    pipeline
        Codec stages in application order.
    target
        ``"hdf5"`` or ``"zarr"``.
    where
        Names the dataset in error messages.
    fallback
        ``None`` (default) raises :class:`~nwbstore.errors.UnsupportedCodecError` for any
        stage or option the target cannot express. ``"drop"`` leaves such stages (or options)
        out. A codec name transcodes: an unsupported compression becomes that codec (with its
        default options); unsupported filters and checksums are dropped, since the data are
        decoded on the way anyway.
    """
    label = "HDF5" if target == "hdf5" else "Zarr"
    out: list[CodecSpec] = []
    for spec in pipeline:
        row = row_by_name(spec.name)
        assert row is not None
        if supported_on(row, target):
            bad = {
                p.name: spec.options[p.name]
                for p in row.params
                if not (p.hdf5 if target == "hdf5" else p.zarr)
                and spec.options.get(p.name, p.default) != p.default
            }
            if not bad:
                out.append(spec)
                continue
            if fallback is None:
                raise UnsupportedCodecError(
                    f"{where}: {spec.name} option(s) {bad} cannot be written to {label} "
                    f"(only the defaults can); pass fallback='drop' (CLI: --fallback drop) to use "
                    f"{ {k: p.default for p in row.params for k in bad if p.name == k} } instead"
                )
            defaults = {p.name: p.default for p in row.params if p.name in bad}
            out.append(make_spec(spec.name, {**spec.options, **defaults}))
            continue
        ident = f"HDF5 filter {row.hdf5_id} ({row.name})" if row.hdf5_id else f"codec {row.name!r}"
        if fallback is None:
            raise UnsupportedCodecError(
                f"{where}: {ident} with options {dict(spec.options)} has no {label} counterpart. "
                f"Choose: transcode with fallback='<codec>' (CLI: --fallback <codec>; one of "
                f"{_choices(target)}), or drop it explicitly with fallback='drop' "
                "(--fallback drop)" + (f". Note: {row.notes}" if row.notes else "")
            )
        if fallback == "drop" or row.role != "compression":
            continue
        new = make_spec(fallback, field="fallback")
        new_row = row_by_name(new.name)
        assert new_row is not None
        if not supported_on(new_row, target) or new_row.role != "compression":
            raise SettingsError(
                f"fallback={fallback!r} is not a compression {label} can write; "
                f"choose one of {_choices(target)}"
            )
        out.append(new)
    return tuple(out)
