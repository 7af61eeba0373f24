"""Read an HDF5 filter pipeline into table specs, and build h5py keyword arguments from one.

All access to h5py's low-level dataset creation property list lives here.
"""

from __future__ import annotations

from typing import Any

from nwbstore.codecs._options import make_spec
from nwbstore.codecs._spec import CodecSpec
from nwbstore.codecs._table import row_by_hdf5_id, row_by_name
from nwbstore.errors import UnsupportedCodecError

__all__ = ["hdf5_filter_kwargs", "read_hdf5_filters", "specs_from_hdf5"]

# filters HDF5 itself marks mandatory (h5py sets them so); the rest are optional
_MANDATORY = {1, 2, 3, 5, 6}


def read_hdf5_filters(dataset: Any) -> list[tuple[int, int, tuple[int, ...], str]]:
    """Return the dataset's filter pipeline as ``(id, flags, cd_values, name)`` in write order.

    h5py reports ``compression='unknown'`` for plugin filters, so the pipeline is read from
    the dataset creation property list.
    """
    plist = dataset.id.get_create_plist()
    out = []
    for i in range(plist.get_nfilters()):
        fid, flags, cd, name = plist.get_filter(i)
        label = name.decode("ascii", "replace") if isinstance(name, bytes) else str(name)
        out.append((int(fid), int(flags), tuple(int(v) for v in cd), label))
    return out


def specs_from_hdf5(dataset: Any, fallback: str | None = None) -> list[CodecSpec]:
    """Map a dataset's HDF5 filters to table specs (see :func:`read_hdf5_filters`).

    Parameters
    ----------
    dataset
        An open ``h5py.Dataset``.
    fallback
        What to do with a filter the table does not know: ``"drop"`` leaves it out, a codec
        name replaces it. ``None`` raises :class:`~nwbstore.errors.UnsupportedCodecError`.
    """
    specs: list[CodecSpec] = []
    for fid, _flags, cd, label in read_hdf5_filters(dataset):
        row = row_by_hdf5_id(fid)
        if row is None or row.hdf5_decode is None:
            if fallback is None:
                raise UnsupportedCodecError(
                    f"dataset {getattr(dataset, 'name', '?')!r} in "
                    f"{getattr(getattr(dataset, 'file', None), 'filename', '?')!r}: HDF5 filter "
                    f"{fid} ({label}) with cd_values {list(cd)} is not in nwbstore's codec table; "
                    "pass fallback='<codec>' to transcode (e.g. 'zstd' or 'zlib') or "
                    "fallback='drop' to store it without this filter"
                )
            if fallback != "drop":
                specs.append(make_spec(fallback, field="fallback"))
            continue
        specs.append(make_spec(row.name, row.hdf5_decode(cd), field=f"HDF5 filter {fid}"))
    return specs


def _h5py_compression(spec: CodecSpec) -> dict[str, Any] | None:
    """The h5py ``compression``/``compression_opts`` for one compression stage, if h5py has one."""
    row = row_by_name(spec.name)
    assert row is not None and row.hdf5_encode is not None
    o = spec.options
    if row.hdf5_id == 1:
        return {"compression": "gzip", "compression_opts": int(o["level"])}
    if row.hdf5_id == 32000:
        return {"compression": "lzf"}
    if row.hdf5_id == 4:
        return {"compression": "szip", "compression_opts": (o["coding"], o["pixels_per_block"])}
    if row.hdf5_id is not None and row.hdf5_id >= 256:
        import hdf5plugin  # noqa: F401  (registers the plugin filters with HDF5)

        return {"compression": row.hdf5_id, "compression_opts": row.hdf5_encode(o)}
    return None


def hdf5_filter_kwargs(pipeline: tuple[CodecSpec, ...]) -> dict[str, Any]:
    """h5py ``create_dataset`` keyword arguments that build ``pipeline`` (in order).

    h5py's own keywords apply scale-offset, shuffle, one compression filter and fletcher32 in
    that order; any other pipeline is built on a dataset creation property list (``dcpl``).
    """
    stages = list(pipeline)
    kw: dict[str, Any] = {}
    if stages and stages[0].name == "scaleoffset" and stages[0].options["scale_type"] in (0, 2):
        kw["scaleoffset"] = int(stages.pop(0).options["factor"]) or True
    if stages and stages[0].name == "shuffle":
        stages.pop(0)
        kw["shuffle"] = True
    if stages and stages[-1].name == "fletcher32":
        stages.pop()
        kw["fletcher32"] = True
    if not stages:
        return kw
    if len(stages) == 1:
        comp = _h5py_compression(stages[0])
        if comp is not None:
            return {**kw, **comp}
    return {"dcpl": _build_dcpl(pipeline)}


def _build_dcpl(pipeline: tuple[CodecSpec, ...]) -> Any:
    import h5py
    import hdf5plugin  # noqa: F401  (registers the plugin filters with HDF5)

    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    for spec in pipeline:
        row = row_by_name(spec.name)
        assert row is not None and row.hdf5_id is not None and row.hdf5_encode is not None
        flags = 0 if row.hdf5_id in _MANDATORY else h5py.h5z.FLAG_OPTIONAL
        dcpl.set_filter(row.hdf5_id, flags, row.hdf5_encode(spec.options))
    return dcpl
