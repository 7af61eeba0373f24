"""Applying a configuration: the data to write and its ``H5DataIO`` / ``ZarrDataIO`` wrapper."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from nwbstore.nwb._config_dataset import DatasetIOConfiguration
from nwbstore.nwb._config_sources import Source
from nwbstore.nwb._config_walk import Candidate

__all__ = ["assign", "data_io"]


def _prepared_data(src: Source, config: DatasetIOConfiguration) -> Any:
    from nwbstore.nwb._config_iterators import (
        BufferedArrayIterator,
        RebufferedIterator,
        rebuffer_generic,
    )

    chunk, buffer = config.chunk_shape, config.buffer_shape
    kind, data = src.kind, src.data
    if kind == "text":
        if hasattr(data, "asstr"):  # h5py strings
            return data.asstr()[()].tolist()
        if not isinstance(data, list | tuple | np.ndarray):
            return np.asarray(data[...]).tolist()
        return data
    if kind in ("array", "list"):
        if chunk is None or buffer == config.full_shape:
            return data
        return BufferedArrayIterator(np.asarray(data), buffer, chunk)
    if kind in ("h5py", "zarr"):
        assert chunk is not None
        return BufferedArrayIterator(data, buffer, chunk)
    assert chunk is not None
    if kind == "gdci":
        return rebuffer_generic(data, buffer, chunk)
    return RebufferedIterator(data, buffer[0], chunk)


def data_io(src: Source, config: DatasetIOConfiguration) -> Any:
    """The ``H5DataIO`` / ``ZarrDataIO`` that writes ``src`` as ``config`` says."""
    data = _prepared_data(src, config)
    settings = config.settings
    if config.backend == "hdf5":
        from hdmf.backends.hdf5 import H5DataIO

        kw = settings.to_hdf5(name=config.location_in_file)
        if kw.get("chunks") is None:
            kw.pop("chunks", None)
        if isinstance(kw.get("compression"), int):
            kw["allow_plugin_filters"] = True
        if "fillvalue" in kw and kw["fillvalue"] is None:
            kw.pop("fillvalue")
        with warnings.catch_warnings():
            # the user chose a plugin filter; hdmf's portability advice is not news here
            warnings.filterwarnings("ignore", message=".*compression may not be available")
            return H5DataIO(data=data, **kw)
    from hdmf_zarr import ZarrDataIO

    zkw = settings.to_zarr(3, dtype=config._codec_dtype(), name=config.location_in_file)
    io_kw: dict[str, Any] = {"chunks": tuple(zkw["chunks"])}
    io_kw["compressors"] = list(zkw["compressors"]) if zkw.get("compressors") else False
    if zkw.get("filters"):
        io_kw["filters"] = list(zkw["filters"])
    if zkw.get("shards") is not None and config.zarr_format == 3:
        io_kw["shards"] = tuple(zkw["shards"])
    if "fill_value" in zkw:
        io_kw["fillvalue"] = zkw["fill_value"]
    return ZarrDataIO(data=data, **io_kw)


def assign(cand: Candidate, dataio: Any) -> None:
    """Put ``dataio`` where the candidate's data was (replacing any earlier wrapper)."""
    from hdmf.container import Data

    if isinstance(cand.container, Data):
        # set_data_io wraps what it holds with the class given; the class here returns ours
        cand.container.set_data_io(data_io_class=lambda data: dataio, data_io_kwargs={})
    else:
        cand.container.fields[cand.field] = dataio
