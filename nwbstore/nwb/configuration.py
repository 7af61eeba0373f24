"""Backend configuration of an in-memory NWBFile: NeuroConv's workflow, built on nwbstore.

>>> config = get_default_backend_configuration(nwbfile, backend="hdf5")
>>> print(config)                                   # the NeuroConv printout
>>> ds = config.dataset_configurations["acquisition/MyTimeSeries/data"]
>>> ds.chunk_shape = (1,); ds.buffer_shape = (2,)    # validated at once
>>> ds.compression_method = "zstd"
>>> configure_backend(nwbfile, config)              # wraps data in H5DataIO / ZarrDataIO

Each :class:`DatasetIOConfiguration` is built from :func:`nwbstore.default_settings` and
converts to and from :class:`nwbstore.DatasetSettings` (``.settings``). ``buffer_shape``
bounds the memory of the write for every kind of source: in-memory arrays and datasets of
other files are read one buffer at a time, ``DataChunkIterator`` output is regrouped into
buffers of whole chunks, and a ``GenericDataChunkIterator`` gets the buffer as its own.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

from nwbstore.defaults import default_settings
from nwbstore.errors import NwbStoreWarning, SettingsError
from nwbstore.nwb._config_apply import assign, data_io
from nwbstore.nwb._config_dataset import (
    Backend,
    DatasetIOConfiguration,
)
from nwbstore.nwb._config_sources import Skip, Source, inspect_source
from nwbstore.nwb._config_walk import Candidate, iter_candidates, location_of

__all__ = [
    "BackendConfiguration",
    "DatasetIOConfiguration",
    "configure_backend",
    "get_default_backend_configuration",
]


class BackendConfiguration:
    """The configuration of every dataset of one NWBFile for one backend.

    Parameters
    ----------
    backend
        ``"hdf5"`` or ``"zarr"``.
    dataset_configurations
        :class:`DatasetIOConfiguration` by location. Edit entries in place; delete an entry to
        leave that dataset as it was added to the NWBFile.
    zarr_format
        2 or 3 (Zarr only; shards need 3).
    skipped
        Locations not configured and why (scalars, links, references, empty data...).
    """

    def __init__(
        self,
        backend: Backend,
        dataset_configurations: Mapping[str, DatasetIOConfiguration],
        *,
        zarr_format: int = 3,
        skipped: Mapping[str, str] | None = None,
    ) -> None:
        if backend not in ("hdf5", "zarr"):
            raise SettingsError(f"backend={backend!r}: must be 'hdf5' or 'zarr'")
        self.backend: Backend = backend
        self.zarr_format = zarr_format
        self.dataset_configurations: dict[str, DatasetIOConfiguration] = dict(
            dataset_configurations
        )
        self.skipped: dict[str, str] = dict(skipped or {})

    @property
    def pretty_backend_name(self) -> str:
        """``"HDF5"`` or ``"Zarr"``."""
        return "HDF5" if self.backend == "hdf5" else "Zarr"

    def __str__(self) -> str:
        title = f"{self.pretty_backend_name} dataset configurations"
        n = len(self.dataset_configurations)
        lines = [title, "-" * len(title), f"{n} dataset{'' if n == 1 else 's'}", ""]
        for config in self.dataset_configurations.values():
            lines.append(str(config))
            lines.append("")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        n = len(self.dataset_configurations)
        return f"BackendConfiguration(backend={self.backend!r}, {n} datasets)"


# --- building the default ----------------------------------------------------------------------


def _stored_in(nwbfile: Any, data: Any) -> bool:
    """True if ``data`` is a dataset of the file ``nwbfile`` was read from (an append)."""
    source = getattr(nwbfile, "container_source", None)
    if not source:
        return False
    path: Any = None
    if hasattr(data, "file") and hasattr(data.file, "filename"):
        path = data.file.filename
    else:
        root = getattr(getattr(data, "store", None), "root", None)
        path = str(root) if root is not None else None
    if not path:
        return False
    return bool(os.path.realpath(str(path)) == os.path.realpath(str(source)))


def _default_for(
    cand: Candidate, src: Source, backend: Backend, zarr_format: int
) -> DatasetIOConfiguration:
    suggestion = default_settings(src.shape, src.dtype, backend, zarr_format=zarr_format)
    settings, buffer = suggestion.settings, suggestion.buffer_shape
    shards_auto = backend == "zarr" and zarr_format == 3  # follow chunk and buffer edits
    kept = src.wrapped
    if kept is not None and (src.wrapped_chunks or kept.pipeline):
        chunks = kept.chunks if src.wrapped_chunks and kept.chunks else settings.chunks
        assert chunks is not None
        chunks = tuple(min(c, s) for c, s in zip(chunks, src.shape, strict=True))
        try:
            shards = kept.shards if backend == "zarr" and zarr_format == 3 else None
            candidate = kept.replace(chunks=chunks, shards=shards)
            if backend == "hdf5":
                candidate.to_hdf5(name=cand.location)
            else:
                candidate.to_zarr(3, name=cand.location)
        except SettingsError:  # the wrapper's codecs do not exist on this backend
            candidate = settings.replace(chunks=chunks, shards=None)
        settings = candidate
        buffer = tuple(
            b if b == s else max(c, b // c * c)
            for b, c, s in zip(buffer, chunks, src.shape, strict=True)
        )
        shards_auto = False
    if kept is not None and kept.maxshape is not None and settings.chunks is not None:
        settings = settings.replace(maxshape=kept.maxshape)  # resizable, as the wrapper asked
    if src.kind == "text":
        buffer = src.shape
    if src.kind == "gdci" and settings.chunks is not None:
        # the iterator's buffer is the memory its author allowed: stay within it
        own = tuple(int(b) for b in src.data.buffer_shape)
        chunks = tuple(min(c, b) for c, b in zip(settings.chunks, own, strict=True))
        buffer = tuple(
            b if b == s else b // c * c for b, c, s in zip(own, chunks, src.shape, strict=True)
        )
        if chunks != settings.chunks:
            settings = settings.replace(chunks=chunks, shards=None)
    config = DatasetIOConfiguration.from_settings(
        settings.replace(shards=None) if shards_auto else settings,
        object_id=cand.container.object_id,
        location_in_file=cand.location,
        dtype=src.dtype,
        full_shape=src.shape,
        buffer_shape=buffer,
        backend=backend,
        zarr_format=zarr_format,
        source_kind=src.kind,
    )
    if shards_auto:
        config.update(shard_shape=settings.shards)
        config.__dict__["_shards_auto"] = True
    return config


def get_default_backend_configuration(
    nwbfile: Any,
    backend: Backend = "hdf5",
    *,
    zarr_format: int = 3,
    include_stored: bool = False,
) -> BackendConfiguration:
    """The default configuration of every dataset of an in-memory NWBFile.

    Parameters
    ----------
    nwbfile
        A ``pynwb.NWBFile``.
    backend
        ``"hdf5"`` or ``"zarr"``.
    zarr_format
        2 or 3 (Zarr); shards are suggested only for 3.
    include_stored
        Also configure datasets already stored in the file ``nwbfile`` was read from (they are
        skipped by default: an append does not rewrite them). ``nwbstore config --backend``
        sets it to show what a whole file would get.

    Returns
    -------
    BackendConfiguration
        ``dataset_configurations`` by location, in alphabetical order; ``skipped`` lists what
        was left out and why.

    Warns
    -----
    NwbStoreWarning
        For data a user may expect to be configured but that cannot be (object columns of
        mixed values, ragged lists, iterators of unknown length); they are left as they are.
    """
    if backend not in ("hdf5", "zarr"):
        raise SettingsError(f"backend={backend!r}: must be 'hdf5' or 'zarr'")
    if zarr_format not in (2, 3):
        raise SettingsError(f"zarr_format={zarr_format!r}: must be 2 or 3")
    configs: dict[str, DatasetIOConfiguration] = {}
    skipped: dict[str, str] = {}
    for cand in iter_candidates(nwbfile):
        src = inspect_source(cand.value)
        if isinstance(src, Skip):
            skipped[cand.location] = src.reason
            if src.warn:
                warnings.warn(
                    f"{cand.location}: not configured: {src.reason}; it is written as it is",
                    NwbStoreWarning,
                    stacklevel=2,
                )
            continue
        if not include_stored and _stored_in(nwbfile, src.data):
            skipped[cand.location] = "already stored in the file this NWBFile was read from"
            continue
        configs[cand.location] = _default_for(cand, src, backend, zarr_format)
    ordered = {location: configs[location] for location in sorted(configs)}
    return BackendConfiguration(backend, ordered, zarr_format=zarr_format, skipped=skipped)


# --- applying ----------------------------------------------------------------------------------


def configure_backend(nwbfile: Any, configuration: BackendConfiguration) -> None:
    """Apply ``configuration`` to ``nwbfile``: wrap each configured dataset for writing.

    HDF5 datasets are wrapped in ``H5DataIO``, Zarr datasets in ``hdmf_zarr.ZarrDataIO``
    (zarr v3 codec objects, as hdmf-zarr 0.14 takes them; ``compressor=`` is never passed).
    Data whose buffer is smaller than the full shape, and datasets of other files, are read
    one buffer at a time while writing. Everything is checked before anything is changed.

    Raises
    ------
    SettingsError
        The configuration was made for another file (an object id differs or is not in this
        NWBFile), names a location this NWBFile does not have, or the data changed shape or
        dtype since the configuration was made.
    """
    if not isinstance(configuration, BackendConfiguration):
        raise SettingsError(
            f"configuration={configuration!r} is not a BackendConfiguration (see "
            "nwbstore.nwb.get_default_backend_configuration)"
        )
    candidates = {c.location: c for c in iter_candidates(nwbfile)}
    objects = nwbfile.objects
    plans: list[tuple[Candidate, Any]] = []
    for location, config in configuration.dataset_configurations.items():
        where = f"dataset {location!r}"
        if not isinstance(config, DatasetIOConfiguration):
            raise SettingsError(f"{where}: {config!r} is not a DatasetIOConfiguration")
        if config.location_in_file != location:
            raise SettingsError(
                f"{where}: the entry is the configuration of {config.location_in_file!r}; "
                "dataset_configurations is keyed by location_in_file"
            )
        if config.backend != configuration.backend:
            raise SettingsError(
                f"{where}: configured for {config.backend!r} inside a "
                f"{configuration.backend!r} configuration"
            )
        cand = candidates.get(location)
        if cand is None:
            owner = objects.get(config.object_id)
            if owner is None:
                raise SettingsError(
                    f"{where}: this configuration was made for another file: object id "
                    f"{config.object_id} is not in this NWBFile ({nwbfile.identifier!r})"
                )
            raise SettingsError(
                f"{where} does not exist in this NWBFile; its object {config.object_id} is at "
                f"{location_of(owner)!r}"
            )
        if cand.container.object_id != config.object_id:
            raise SettingsError(
                f"{where}: this configuration was made for another file: the object there has "
                f"object id {cand.container.object_id}, the configuration {config.object_id}"
            )
        src = inspect_source(cand.value)
        if isinstance(src, Skip):
            raise SettingsError(f"{where} cannot be configured: {src.reason}")
        if src.shape != config.full_shape or src.dtype != config.dtype:
            raise SettingsError(
                f"{where}: the data is now {src.shape} {src.dtype}, the configuration was made "
                f"for {config.full_shape} {config.dtype}; make the configuration again"
            )
        plans.append((cand, data_io(src, config)))
    for cand, dataio in plans:
        assign(cand, dataio)
