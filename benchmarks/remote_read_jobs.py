"""The jobs ``bench_remote.py`` measures, each run in its own process.

``python benchmarks/remote_read_jobs.py JOB --endpoint URL --src s3://bench/KEY --zarr-src
s3://bench/KEY.zarr --rows A B --out result.json`` reads the remote NWB file through the
counting proxy at ``--endpoint`` in phases:

- ``open``: open the file and list its whole tree (every group and dataset name);
- ``nwbfile``: build the ``pynwb.NWBFile`` (pynwb / hdmf-zarr on the tool's file object);
- ``slice``: rows ``A:B`` of every channel of ``acquisition/ElectricalSeries/data``;
- ``table``: every column of ``intervals/trials``;
- ``spikes``: the whole ``units/spike_times``.

Before each phase the job sends one ``HEAD`` for ``__phase__/<phase>``, so the parent can split
the proxy's record of requests by phase. A phase a tool cannot do is recorded with its error
(``"error"``), not hidden. The job writes ``{phase: {"seconds", "checksum" | "error"}}`` to
``--out`` (again after each phase, so a job killed for taking too long still reports the
phases it finished); the parent checks each tool's values against h5py's read of the local
file (checksums).

Jobs: ``nwbstore`` (``nwbstore.open``: remote chunk reader, metadata catalog cold: the cache
directory is empty), ``nwbstore-warm`` (the same with the catalog the previous run cached),
``remfile`` (``h5py`` over ``remfile.File``), ``h5py-s3fs`` (``h5py`` over an ``s3fs`` file, its
default cache), ``h5py-blockcache`` (``h5py`` over a 2 MiB fsspec block cache), ``h5netcdf``
(``xarray``'s ``h5netcdf`` engine), ``kerchunk`` (``SingleHdf5ToZarr`` references opened with
zarr), ``zarr-nwbstore`` and ``zarr-hdmf`` (the same file converted to Zarr v3: nwbstore, and
hdmf-zarr's ``NWBZarrIO`` / zarr directly).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import numpy as np
from _s3_bench_common import Job, job_main

DATA = "acquisition/ElectricalSeries/data"
TRIALS = "intervals/trials"
SPIKES = "units/spike_times"
PHASES = ("open", "nwbfile", "slice", "table", "spikes")
MARKER = "__phase__/"


def storage_options(endpoint: str) -> dict[str, Any]:
    """s3fs options for the loopback server (dummy credentials)."""
    return {
        "endpoint_url": endpoint,
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
        "skip_instance_cache": True,
    }


def _checksum(value: Any) -> float:
    """A number that changes with the values (strings by their lengths)."""
    arr = np.asarray(value)
    if arr.dtype.kind in "OUST":
        return float(sum(len(v.decode() if isinstance(v, bytes) else str(v)) for v in arr.ravel()))
    return float(np.asarray(arr, dtype=np.float64).sum())


def _table_checksum(columns: dict[str, Any]) -> float:
    return sum(_checksum(columns[name]) for name in sorted(columns) if name != "id")


class Run:
    """Times the phases of one job and marks them on the proxy."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bucket = args.src.split("/")[2]
        self.results: dict[str, dict[str, Any]] = {}

    def _mark(self, phase: str) -> None:
        url = f"{self.args.endpoint}/{self.bucket}/{MARKER}{phase}"
        request = urllib.request.Request(url, method="HEAD")
        with contextlib.suppress(urllib.error.HTTPError):  # 403/404: the proxy saw it
            urllib.request.urlopen(request, timeout=30).close()

    def phase(self, name: str, fn: Callable[[], Any]) -> Any:
        self._mark(name)
        start = time.perf_counter()
        try:
            value = fn()
        except Exception as err:  # recorded: a tool that cannot do a phase says why
            first_line = str(err).splitlines()[0][:160] if str(err) else ""
            self.results[name] = {
                "seconds": time.perf_counter() - start,
                "error": f"{type(err).__name__}: {first_line}",
            }
            self._save()
            return None
        self.results[name] = {"seconds": time.perf_counter() - start}
        if name in ("slice", "table", "spikes"):
            self.results[name]["checksum"] = value
        self._save()
        return value

    def _save(self) -> None:
        """The results so far, to ``--out`` (written whole, then renamed)."""
        partial = self.args.out.with_name(self.args.out.name + ".partial")
        partial.write_text(json.dumps(self.results))
        partial.replace(self.args.out)


# -- jobs over an h5py-like file ---------------------------------------------------------------


def _h5py_phases(run: Run, opener: Callable[[], Any]) -> None:
    import h5py

    def open_and_list() -> Any:
        f = opener()
        names: list[str] = []
        f.visit(names.append)
        return f

    f = run.phase("open", open_and_list)
    if f is None:
        return

    def nwbfile() -> Any:
        from pynwb import NWBHDF5IO

        io = NWBHDF5IO(file=f, mode="r")
        return io.read().identifier

    run.phase("nwbfile", nwbfile)
    rows = run.args.rows
    run.phase("slice", lambda: _checksum(f[DATA][rows[0] : rows[1]]))

    def table() -> float:
        group = f[TRIALS]
        return _table_checksum({k: v[()] for k, v in group.items() if isinstance(v, h5py.Dataset)})

    run.phase("table", table)
    run.phase("spikes", lambda: _checksum(f[SPIKES][()]))


def _s3fs_file(args: argparse.Namespace, **open_kwargs: Any) -> Any:
    import s3fs

    fs = s3fs.S3FileSystem(**storage_options(args.endpoint))
    return fs.open(args.src, "rb", **open_kwargs)


def job_h5py_s3fs(run: Run) -> None:
    import h5py
    import hdf5plugin  # noqa: F401

    _h5py_phases(run, lambda: h5py.File(_s3fs_file(run.args), "r"))


def job_h5py_blockcache(run: Run) -> None:
    import h5py
    import hdf5plugin  # noqa: F401

    opener = lambda: h5py.File(  # noqa: E731
        _s3fs_file(run.args, block_size=2 * 2**20, cache_type="blockcache"), "r"
    )
    _h5py_phases(run, opener)


def job_remfile(run: Run) -> None:
    import h5py
    import hdf5plugin  # noqa: F401
    import remfile

    key = run.args.src.split("/", 3)[3]
    url = f"{run.args.endpoint}/{run.bucket}/{key}"  # the loopback server takes plain GETs
    _h5py_phases(run, lambda: h5py.File(remfile.File(url), "r"))


# -- nwbstore ----------------------------------------------------------------------------------


def _store_phases(run: Run, url: str) -> None:
    import nwbstore
    from nwbstore.nodes import Dataset

    opts = storage_options(run.args.endpoint)

    def open_and_list() -> Any:
        store = nwbstore.open(url, storage_options=opts, concurrency=run.args.concurrency)
        names: list[str] = []
        store.root.visititems(lambda name, _node: names.append(name))
        return store

    store = run.phase("open", open_and_list)
    if store is None:
        return

    def nwbfile() -> Any:
        import nwbstore.nwb

        with nwbstore.nwb.read(url, storage_options=opts) as read:
            return read.identifier

    run.phase("nwbfile", nwbfile)
    rows = run.args.rows
    run.phase("slice", lambda: _checksum(store[DATA][rows[0] : rows[1]]))

    def table() -> float:
        group = store[TRIALS]
        columns = {name: node[...] for name, node in group.items() if isinstance(node, Dataset)}
        return _table_checksum(columns)

    run.phase("table", table)
    run.phase("spikes", lambda: _checksum(store[SPIKES][...]))
    store.close()


def job_nwbstore(run: Run) -> None:
    _store_phases(run, run.args.src)


def job_nwbstore_warm(run: Run) -> None:
    _store_phases(run, run.args.src)


def job_zarr_nwbstore(run: Run) -> None:
    _store_phases(run, run.args.zarr_src)


# -- other readers ---------------------------------------------------------------------------


def job_h5netcdf(run: Run) -> None:
    import xarray as xr

    fh = _s3fs_file(run.args)

    def open_and_list() -> Any:
        return xr.open_datatree(fh, engine="h5netcdf", phony_dims="access")

    tree = run.phase("open", open_and_list)
    run.results["nwbfile"] = {"seconds": 0.0, "error": "not a pynwb reader"}
    if tree is None:
        return
    rows = run.args.rows
    run.phase(
        "slice",
        lambda: _checksum(tree["acquisition/ElectricalSeries"]["data"][rows[0] : rows[1]].values),
    )
    run.phase(
        "table",
        lambda: _table_checksum(
            {k: v.values for k, v in tree[TRIALS].to_dataset().data_vars.items()}
        ),
    )
    run.phase("spikes", lambda: _checksum(tree["units"]["spike_times"].values))


def job_kerchunk(run: Run) -> None:
    import fsspec
    import zarr
    from kerchunk.hdf import SingleHdf5ToZarr

    opts = storage_options(run.args.endpoint)

    def open_and_list() -> Any:
        with _s3fs_file(run.args) as fh:
            refs = SingleHdf5ToZarr(fh, run.args.src, inline_threshold=300).translate()
        fs = fsspec.filesystem("reference", fo=refs, remote_protocol="s3", remote_options=opts)
        store = zarr.storage.FsspecStore(fs, read_only=True, path="")
        group = zarr.open_group(store, mode="r", zarr_format=2)
        names = [name for name, _ in group.members(max_depth=None)]
        assert names
        return group

    group = run.phase("open", open_and_list)
    run.results["nwbfile"] = {"seconds": 0.0, "error": "not a pynwb reader"}
    if group is None:
        return
    rows = run.args.rows
    run.phase("slice", lambda: _checksum(group[DATA][rows[0] : rows[1]]))
    run.phase(
        "table",
        lambda: _table_checksum({name: arr[...] for name, arr in group[TRIALS].arrays()}),
    )
    run.phase("spikes", lambda: _checksum(group[SPIKES][...]))


def job_zarr_hdmf(run: Run) -> None:
    import zarr

    opts = storage_options(run.args.endpoint)
    url = run.args.zarr_src

    def open_and_list() -> Any:
        group = zarr.open_consolidated(url, mode="r", storage_options=opts)
        names = [name for name, _ in group.members(max_depth=None)]
        assert names
        return group

    group = run.phase("open", open_and_list)

    def nwbfile() -> Any:
        from hdmf_zarr import NWBZarrIO

        with NWBZarrIO(url, mode="r", storage_options=opts) as io:
            return io.read().identifier

    run.phase("nwbfile", nwbfile)
    if group is None:
        return
    rows = run.args.rows
    run.phase("slice", lambda: _checksum(group[DATA][rows[0] : rows[1]]))
    run.phase(
        "table",
        lambda: _table_checksum({name: arr[...] for name, arr in group[TRIALS].arrays()}),
    )
    run.phase("spikes", lambda: _checksum(group[SPIKES][...]))


READERS: dict[str, Callable[[Run], None]] = {
    "nwbstore": job_nwbstore,
    "nwbstore-warm": job_nwbstore_warm,
    "remfile": job_remfile,
    "h5py-s3fs": job_h5py_s3fs,
    "h5py-blockcache": job_h5py_blockcache,
    "h5netcdf": job_h5netcdf,
    "kerchunk": job_kerchunk,
    "zarr-nwbstore": job_zarr_nwbstore,
    "zarr-hdmf": job_zarr_hdmf,
}


#: Imported before any phase is timed, by every job: a phase times reading, not importing
#: (the first ``import pynwb`` or ``import s3fs`` costs 0.1-1 s of CPU, whichever tool pays it).
PREIMPORTS = (
    "h5py",
    "hdf5plugin",
    "s3fs",
    "zarr",
    "numcodecs",
    "xarray",
    "pynwb",
    "hdmf_zarr",
    "remfile",
    "nwbstore.backends.hdf5",
    "nwbstore.backends._remote_chunks",
    "nwbstore.backends.zarr",
    "nwbstore.nwb",
)


def _preimport() -> None:
    import importlib

    for name in PREIMPORTS:
        with contextlib.suppress(ImportError):  # a tool not installed reports it in its phase
            importlib.import_module(name)


def _as_job(reader: Callable[[Run], None]) -> Job:
    """A job for :func:`job_main`: run ``reader``'s phases, return their results."""

    def job(args: argparse.Namespace) -> dict[str, Any]:
        _preimport()
        run = Run(args)
        reader(run)
        return run.results

    return job


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--src", required=True, help="s3://bucket/key of the HDF5 file")
    parser.add_argument("--zarr-src", required=True, help="s3://bucket/key of its Zarr copy")
    parser.add_argument("--rows", type=int, nargs=2, required=True, help="the slice's rows")
    parser.add_argument("--concurrency", type=int, default=16)


def main() -> None:
    jobs = {name: _as_job(reader) for name, reader in READERS.items()}
    job_main(jobs, _arguments, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
