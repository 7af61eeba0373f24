"""The jobs ``bench_s3.py`` measures, each run in its own process.

``python benchmarks/s3_jobs.py JOB --endpoint URL --out result.json [options]`` runs one job
against the S3 endpoint (the counting proxy) and writes ``{"seconds": ..., ...}`` to ``--out``:
the time of the job itself, from just before its first request to its end, without the
interpreter start and imports (the parent also times the whole process). Jobs:

- ``put``: ``s3fs.S3FileSystem.put`` of the source file(s) to ``--dst`` (s3fs defaults);
- ``convert``: ``nwbstore.convert(src, dst)`` to S3 Zarr;
- ``hdmf``: hdmf-zarr's ``NWBZarrIO.export`` from ``NWBHDF5IO`` to a zarr ``FsspecStore``;
- ``stream``: ``ds.append`` of generated int16 ephys in 30,000-row blocks into a resizable
  nwbstore Zarr dataset on S3, then ``close()``;
- ``pipe``: s3fs ``pipe`` of the same chunks, encoded beforehand (untimed), at the same
  concurrency: the floor for moving the stream's bytes.
"""

from __future__ import annotations

import argparse
import inspect
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
from _s3_bench_common import job_main

#: The stream: 384-channel int16 ephys appended in blocks of 30,000 rows (1 s at 30 kHz).
CHANNELS = 384
BLOCK_ROWS = 30_000
#: Chunks of 20,000 rows x 64 channels (2.56 MB): blocks end in the middle of a chunk row
#: every other block, and the generated data (one block repeated) repeats every 3 chunk rows,
#: so the ``pipe`` job can encode each distinct chunk once beforehand.
CHUNKS = (20_000, 64)
PERIOD_CHUNK_ROWS = 3
ARRAY = "data"


def storage_options(endpoint: str, concurrency: int | None = None) -> dict[str, Any]:
    """s3fs options for the loopback server (dummy credentials, as the test suite uses)."""
    options: dict[str, Any] = {
        "endpoint_url": endpoint,
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
        "skip_instance_cache": True,
    }
    if concurrency:
        # botocore's pool holds 10 connections by default: more requests in flight would queue
        options["config_kwargs"] = {"max_pool_connections": concurrency}
    return options


def stream_rows(gb: float) -> int:
    """Rows streamed for ``gb`` GB of raw int16 data: whole blocks, at least one."""
    blocks = max(1, round(gb * 1e9 / (BLOCK_ROWS * CHANNELS * 2)))
    return blocks * BLOCK_ROWS


def stream_chunks(rows: int) -> int:
    """Chunks a stream of ``rows`` rows stores."""
    return -(-rows // CHUNKS[0]) * -(-CHANNELS // CHUNKS[1])


def stream_settings() -> Any:
    """The stream dataset's settings: zstd level 3 (nwbstore's default codec), resizable."""
    import nwbstore

    return nwbstore.DatasetSettings(
        chunks=CHUNKS, compression="zstd", compression_opts=3, maxshape=(None, CHANNELS)
    )


def ephys_block(seed: int = 0) -> np.ndarray:
    """One block of ephys-like int16 data: noise plus a slow wave (compresses about 2x)."""
    rng = np.random.default_rng(seed)
    block = rng.normal(0, 30, size=(BLOCK_ROWS, CHANNELS)).astype(np.int16)
    block += (200 * np.sin(np.arange(BLOCK_ROWS) / 3000.0)).astype(np.int16)[:, None]
    return block


def _accepts(function: Any, name: str) -> bool:
    return name in inspect.signature(function).parameters


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def job_put(args: argparse.Namespace) -> dict[str, Any]:
    import s3fs

    fs = s3fs.S3FileSystem(**storage_options(args.endpoint))
    start = time.perf_counter()
    fs.put([str(s) for s in args.src], args.dst.rstrip("/") + "/")
    return {"seconds": time.perf_counter() - start}


def job_convert(args: argparse.Namespace) -> dict[str, Any]:
    import nwbstore

    kwargs: dict[str, Any] = {}
    if _accepts(nwbstore.convert, "concurrency"):
        kwargs["concurrency"] = args.concurrency
    start = time.perf_counter()
    report = nwbstore.convert(
        args.src[0],
        args.dst,
        storage_options=storage_options(args.endpoint),
        progress=False,
        **kwargs,
    )
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "concurrency": kwargs.get("concurrency"), "report": str(report)}


def job_hdmf(args: argparse.Namespace) -> dict[str, Any]:
    import warnings

    import hdf5plugin  # noqa: F401  (plugin filters of the source)
    from hdmf_zarr.nwb import NWBZarrIO
    from pynwb import NWBHDF5IO
    from zarr.storage import FsspecStore

    warnings.simplefilter("ignore")
    start = time.perf_counter()
    store = FsspecStore.from_url(
        args.dst, storage_options=storage_options(args.endpoint), read_only=False
    )
    with NWBHDF5IO(str(args.src[0]), "r") as read_io, NWBZarrIO(store, mode="w") as export_io:
        export_io.export(src_io=read_io, write_args={"link_data": False})
    return {"seconds": time.perf_counter() - start}


def job_stream(args: argparse.Namespace) -> dict[str, Any]:
    import nwbstore

    rows = stream_rows(args.gb)
    block = ephys_block()
    kwargs: dict[str, Any] = {}
    if _accepts(nwbstore.open, "concurrency"):
        kwargs["concurrency"] = args.concurrency
    rss_before = _rss_mb()
    start = time.perf_counter()
    with nwbstore.open(
        args.dst, "w", storage_options=storage_options(args.endpoint), **kwargs
    ) as store:
        ds = store.root.create_dataset(
            ARRAY, shape=(0, CHANNELS), dtype="int16", settings=stream_settings()
        )
        for _ in range(rows // BLOCK_ROWS):
            ds.append(block)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": rows,
        "raw_bytes": rows * CHANNELS * 2,
        "rss_before_mb": rss_before,
        "concurrency": kwargs.get("concurrency"),
    }


def encoded_chunks(rows: int) -> dict[str, bytes]:
    """Every chunk key of a stream of ``rows`` rows -> its encoded bytes (zarr's encoding).

    The distinct chunks (3 chunk rows, plus a partial last one) are encoded once through
    zarr-python in memory with the stream's settings; the keys share those bytes objects.
    """
    import zarr
    from zarr.storage import MemoryStore

    settings = stream_settings().to_zarr()
    block = ephys_block()
    period = np.concatenate([block] * (PERIOD_CHUNK_ROWS * CHUNKS[0] // BLOCK_ROWS))

    def encode(data: np.ndarray) -> dict[str, bytes]:
        held: dict[str, Any] = {}
        array = zarr.create_array(
            MemoryStore(store_dict=held),
            name=ARRAY,
            shape=data.shape,
            dtype="int16",
            fill_value=0,
            **settings,
        )
        array[...] = data
        prefix = f"{ARRAY}/c/"
        return {k[len(prefix) :]: v.to_bytes() for k, v in held.items() if k.startswith(prefix)}

    full = encode(period)
    chunk_rows = -(-rows // CHUNKS[0])
    tail = rows - (chunk_rows - 1) * CHUNKS[0]
    last = (chunk_rows - 1) % PERIOD_CHUNK_ROWS
    partial = encode(period[last * CHUNKS[0] : last * CHUNKS[0] + tail]) if tail < CHUNKS[0] else {}
    out: dict[str, bytes] = {}
    for r in range(chunk_rows):
        for c in range(-(-CHANNELS // CHUNKS[1])):
            if r == chunk_rows - 1 and partial:
                out[f"{r}/{c}"] = partial[f"0/{c}"]
            else:
                out[f"{r}/{c}"] = full[f"{r % PERIOD_CHUNK_ROWS}/{c}"]
    return out


def job_pipe(args: argparse.Namespace) -> dict[str, Any]:
    import s3fs

    rows = stream_rows(args.gb)
    chunks = encoded_chunks(rows)
    root = args.dst.removeprefix("s3://").rstrip("/")
    values = {f"{root}/{ARRAY}/c/{key}": value for key, value in chunks.items()}
    fs = s3fs.S3FileSystem(**storage_options(args.endpoint, args.concurrency))
    rss_before = _rss_mb()
    start = time.perf_counter()
    fs.pipe(values, batch_size=args.concurrency)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": rows,
        "raw_bytes": rows * CHANNELS * 2,
        "encoded_bytes": sum(len(v) for v in values.values()),
        "rss_before_mb": rss_before,
        "concurrency": args.concurrency,
    }


JOBS = {
    "put": job_put,
    "convert": job_convert,
    "hdmf": job_hdmf,
    "stream": job_stream,
    "pipe": job_pipe,
}


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dst", required=True, help="s3://bucket/key of the result")
    parser.add_argument("--src", type=Path, nargs="*", default=[])
    parser.add_argument("--gb", type=float, default=2.0, help="stream size (stream, pipe)")
    parser.add_argument("--concurrency", type=int, default=32)


def main() -> None:
    job_main(JOBS, _arguments, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
