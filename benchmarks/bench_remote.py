"""Benchmark: a 1-second slice of a remote NWB file, nwbstore's chunk reader against h5py.

One run generates an NWB file (pynwb, one 384-channel int16 ``ElectricalSeries`` at 30 kHz,
chunks of 30,000 x 64, gzip level 4; ``--size`` MB of raw data), uploads it to moto's S3
server, and reads it through the counting proxy (``nwbstore.testing.s3proxy``, own process)
at each ``--latencies`` value with each job of ``remote_read_jobs.py`` in a child process of
its own (started by ``s3_launcher.py``):

- ``nwbstore`` -- ``nwbstore.open`` (concurrent, coalesced range GETs; index built on the
  first read);
- ``h5py-s3fs`` -- ``h5py.File`` over an ``s3fs`` file with its default cache;
- ``h5py-blockcache`` -- ``h5py.File`` over a 2 MiB fsspec block cache (nwbstore before).

For two phases, ``open`` (open, reach the dataset) and ``slice`` (rows 30,000-60,000 of every
channel: one chunk row, 6 chunks), it reports requests, sequential rounds (requests that
overlap in time share a round), MB sent by the server and the median time of ``--repeat``
runs, as a markdown table on standard output.

Run: ``python benchmarks/bench_remote.py`` (``--size 200`` by default); ``--size 50
--repeat 1`` for a quick one. Do not run big sizes on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _s3_bench_common import (  # noqa: E402  (beside this file)
    BUCKET,
    MB,
    Launcher,
    Proxy,
    _pythonpath,
    moto_server,
    s3_client,
    say,
    set_quiet,
)

JOBS_SCRIPT = HERE / "remote_read_jobs.py"
JOBS = ("nwbstore", "h5py-s3fs", "h5py-blockcache")
KEY = "remote/session.nwb"
CHANNELS = 384
RATE = 30_000
CHUNKS = (30_000, 64)
SLICE = (30_000, 60_000)
MARKER = "__phase__/slice"


def build_file(path: Path, size_mb: float) -> dict[str, Any]:
    """Write the benchmark's NWB file; returns its facts (rows, stored chunk bytes)."""
    from datetime import UTC, datetime

    import h5py
    import numpy as np
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ecephys import ElectricalSeries

    seconds = max(3, round(size_mb * MB / (RATE * CHANNELS * 2)))
    rng = np.random.default_rng(0)
    block = rng.normal(0, 30, size=(RATE, CHANNELS)).astype(np.int16)
    block += (200 * np.sin(np.arange(RATE) / 3000.0)).astype(np.int16)[:, None]
    data = np.concatenate([np.roll(block, 7 * s, axis=0) for s in range(seconds)])
    nwbfile = NWBFile(
        session_description="nwbstore remote read benchmark",
        identifier="nwbstore-bench-remote",
        session_start_time=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
    )
    device = nwbfile.create_device(name="probe", description="a silicon probe")
    group = nwbfile.create_electrode_group(
        name="shank0", description="shank", location="CA1", device=device
    )
    for _ in range(CHANNELS):
        nwbfile.add_electrode(group=group, location="CA1")
    region = nwbfile.create_electrode_table_region(list(range(CHANNELS)), "all electrodes")
    wrapped = H5DataIO(data, chunks=CHUNKS, compression="gzip", compression_opts=4)
    nwbfile.add_acquisition(
        ElectricalSeries(name="ElectricalSeries", data=wrapped, electrodes=region, rate=float(RATE))
    )
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    with h5py.File(path) as f:
        ds = f["acquisition/ElectricalSeries/data"]
        row = SLICE[0] // CHUNKS[0]
        slice_bytes = sum(
            ds.id.get_chunk_info_by_coord((row * CHUNKS[0], c * CHUNKS[1])).size
            for c in range(-(-CHANNELS // CHUNKS[1]))
        )
    return {
        "rows": seconds * RATE,
        "file_mb": path.stat().st_size / MB,
        "slice_chunk_mb": slice_bytes / MB,
    }


def _phase_stats(requests: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    from nwbstore.testing.s3proxy import RecordedRequest, count_rounds

    records = [RecordedRequest(**r) for r in requests]
    cut = next((i for i, r in enumerate(records) if r.path.endswith(MARKER)), len(records))
    phases = {"open": records[:cut], "slice": records[cut + 1 :]}
    return {
        name: {
            "requests": len(rs),
            "rounds": count_rounds(rs),
            "mb": sum(r.bytes_out for r in rs) / MB,
        }
        for name, rs in phases.items()
    }


def run_one(
    job: str, launcher: Launcher, proxy: Proxy, work: Path, concurrency: int
) -> dict[str, Any]:
    out = work / f"{job}-{uuid.uuid4().hex[:8]}.json"
    err = out.with_suffix(".stderr")
    cmd = [sys.executable, str(JOBS_SCRIPT), job, "--endpoint", proxy.url]
    cmd += ["--src", f"s3://{BUCKET}/{KEY}", "--rows", *map(str, SLICE), "--out", str(out)]
    cmd += ["--concurrency", str(concurrency)]
    proxy.reset()
    done = launcher.run(cmd, {**os.environ, "PYTHONPATH": _pythonpath()}, err)
    if done["returncode"] != 0:
        tail = err.read_text(errors="replace").strip().splitlines()[-8:]
        raise SystemExit(f"job {job} failed:\n" + "\n".join(tail))
    requests = json.loads(proxy._ask("requests"))
    result = json.loads(out.read_text())
    return {**result, **{"phases": _phase_stats(requests)}}


def run_all(args: argparse.Namespace, work: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    launcher = Launcher()
    local = work / "session.nwb"
    say(f"writing {args.size:g} MB of ephys as NWB ...")
    facts = build_file(local, args.size)
    say(f"  {facts['file_mb']:.1f} MB file, slice chunks {facts['slice_chunk_mb']:.2f} MB")
    rows: list[dict[str, Any]] = []
    try:
        with moto_server() as moto_url:
            moto = s3_client(moto_url)
            moto.create_bucket(Bucket=BUCKET)
            moto.upload_file(str(local), BUCKET, KEY)
            for latency in args.latencies:
                proxy = Proxy(moto_url, latency, work)
                try:
                    for job in JOBS:
                        runs = [
                            run_one(job, launcher, proxy, work, args.concurrency)
                            for _ in range(args.repeat)
                        ]
                        checks = {r["checksum"] for r in runs}
                        if len(checks) != 1:
                            raise SystemExit(f"{job}: runs read different values")
                        last = runs[-1]
                        row = {
                            "latency_ms": latency * 1000,
                            "job": job,
                            "checksum": last["checksum"],
                            "open_s": statistics.median(r["open_seconds"] for r in runs),
                            "slice_s": statistics.median(r["slice_seconds"] for r in runs),
                            **{
                                f"{phase}_{k}": v
                                for phase, stats in last["phases"].items()
                                for k, v in stats.items()
                            },
                        }
                        rows.append(row)
                        say(
                            f"  {latency * 1000:4.0f} ms {job:16s} slice {row['slice_s']:6.2f} s "
                            f"{row['slice_requests']:3d} req {row['slice_rounds']:3d} rounds "
                            f"{row['slice_mb']:6.2f} MB"
                        )
                finally:
                    proxy.stop()
    finally:
        launcher.stop()
    if len({r["checksum"] for r in rows}) != 1:
        raise SystemExit("the jobs read different values")
    return rows, facts


def table(rows: list[dict[str, Any]], facts: dict[str, Any]) -> str:
    lines = [
        f"File: {facts['file_mb']:.1f} MB ({facts['rows']} rows x {CHANNELS} channels int16, "
        f"chunks {CHUNKS[0]} x {CHUNKS[1]}, gzip 4). Slice: rows {SLICE[0]}-{SLICE[1]} "
        f"(1 s, 6 chunks, {facts['slice_chunk_mb']:.2f} MB stored).",
        "",
        "| latency | method | open: requests / rounds / MB / s | "
        "slice: requests / rounds / MB / s | slice bytes / chunk bytes |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['latency_ms']:.0f} ms | {r['job']} | "
            f"{r['open_requests']} / {r['open_rounds']} / {r['open_mb']:.2f} / {r['open_s']:.2f} | "
            f"{r['slice_requests']} / {r['slice_rounds']} / {r['slice_mb']:.2f} / "
            f"{r['slice_s']:.2f} | {r['slice_mb'] / facts['slice_chunk_mb']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=200.0, help="MB of raw ephys data")
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.0, 0.025])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    set_quiet(args.quiet)
    with tempfile.TemporaryDirectory(prefix="bench-remote-") as tmp:
        rows, facts = run_all(args, Path(tmp))
    print(table(rows, facts))
    if args.json:
        Path(args.json).write_text(json.dumps({"facts": facts, "rows": rows}, indent=1))


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as error:  # pragma: no cover
        raise SystemExit(str(error)) from None
