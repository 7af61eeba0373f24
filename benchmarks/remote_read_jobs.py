"""The jobs ``bench_remote.py`` measures, each run in its own process.

``python benchmarks/remote_read_jobs.py JOB --endpoint URL --src s3://bench/KEY --rows A B
--out result.json`` opens the remote NWB file ``--src`` through the counting proxy at
``--endpoint``, reaches ``acquisition/ElectricalSeries/data`` (phase ``open``), then reads
rows ``A:B`` of every channel (phase ``slice``). Between the phases it sends one ``HEAD`` for
the key ``__phase__/slice`` so the parent can split the proxy's record of requests. It writes
``{"open_seconds", "slice_seconds", "checksum"}`` to ``--out``. Jobs:

- ``nwbstore``: ``nwbstore.open`` (the remote chunk reader; its index is built on the first
  read, so it is part of the ``slice`` phase);
- ``h5py-s3fs``: ``h5py.File`` over ``s3fs``'s file object with its default cache;
- ``h5py-blockcache``: ``h5py.File`` over an fsspec block cache of 2 MiB blocks (nwbstore's
  read path before the chunk reader).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

DATA = "acquisition/ElectricalSeries/data"
MARKER = "__phase__/slice"


def storage_options(endpoint: str) -> dict[str, Any]:
    """s3fs options for the loopback server (dummy credentials)."""
    return {
        "endpoint_url": endpoint,
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
        "skip_instance_cache": True,
    }


def _mark(endpoint: str, bucket: str) -> None:
    import contextlib
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{endpoint}/{bucket}/{MARKER}", method="HEAD")
    with contextlib.suppress(urllib.error.HTTPError):  # 403/404: the proxy saw it, enough
        urllib.request.urlopen(request, timeout=30).close()


def _h5py(args: argparse.Namespace, **open_kwargs: Any) -> dict[str, Any]:
    import h5py
    import hdf5plugin  # noqa: F401
    import s3fs

    start = time.perf_counter()
    fs = s3fs.S3FileSystem(**storage_options(args.endpoint))
    fh = fs.open(args.src, "rb", **open_kwargs)
    f = h5py.File(fh, "r")
    ds = f[DATA]
    opened = time.perf_counter()
    _mark(args.endpoint, args.src.split("/")[2])
    start_slice = time.perf_counter()
    data = ds[args.rows[0] : args.rows[1]]
    done = time.perf_counter()
    f.close()
    fh.close()
    return {
        "open_seconds": opened - start,
        "slice_seconds": done - start_slice,
        "checksum": int(np.asarray(data, dtype=np.int64).sum()),
    }


def job_nwbstore(args: argparse.Namespace) -> dict[str, Any]:
    import nwbstore

    start = time.perf_counter()
    store = nwbstore.open(
        args.src, storage_options=storage_options(args.endpoint), concurrency=args.concurrency
    )
    ds = store[DATA]
    opened = time.perf_counter()
    _mark(args.endpoint, args.src.split("/")[2])
    start_slice = time.perf_counter()
    data = ds[args.rows[0] : args.rows[1]]
    done = time.perf_counter()
    store.close()
    return {
        "open_seconds": opened - start,
        "slice_seconds": done - start_slice,
        "checksum": int(np.asarray(data, dtype=np.int64).sum()),
    }


def job_h5py_s3fs(args: argparse.Namespace) -> dict[str, Any]:
    return _h5py(args)


def job_h5py_blockcache(args: argparse.Namespace) -> dict[str, Any]:
    return _h5py(args, block_size=2 * 2**20, cache_type="blockcache")


JOBS = {
    "nwbstore": job_nwbstore,
    "h5py-s3fs": job_h5py_s3fs,
    "h5py-blockcache": job_h5py_blockcache,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job", choices=sorted(JOBS))
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--src", required=True)
    parser.add_argument("--rows", type=int, nargs=2, required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    result = JOBS[args.job](args)
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
