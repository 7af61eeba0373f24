"""Benchmark: reading a remote NWB file, nwbstore against the tools users reach for today.

One run generates an NWB file (pynwb: a 384-channel int16 ``ElectricalSeries`` at 30 kHz,
chunks 30,000 x 64, gzip 4, ``--size`` MB of raw data; a trials table of 1,000 rows with a
text column; 300 units with 1,000 spike times each), converts a copy to Zarr v3 with
``nwbstore.convert``, uploads both to moto's S3 server and reads them through the counting
proxy (``nwbstore.testing.s3proxy``, own process) at each ``--latencies`` value, each job of
``remote_read_jobs.py`` in a child process of its own (``s3_launcher.py``). Phases: ``open``
(open + list the whole tree), ``nwbfile`` (build the ``pynwb.NWBFile``), ``slice`` (1 s of all
384 channels: one chunk row, 6 chunks), ``table`` (every trials column), ``spikes`` (the whole
``units/spike_times``). Per phase: requests, sequential rounds (requests overlapping in time
share a round), MB sent by the server, median time of ``--repeat`` runs. ``nwbstore-warm``
runs with the metadata catalog its cold run cached (TTL 0: validated by one HEAD).
``--bandwidth`` (MB/s) paces every response body at that rate, as a link slower than loopback
would (each body on its own, like independent connections to S3). The table adds each
method's total time over the phases and, at each latency, how many times faster the total and
the ``open`` phase are than ``remfile`` + h5py.

Run: ``python benchmarks/bench_remote.py`` (``--size 200`` by default); ``--size 50
--repeat 1`` for a quick one; ``--latencies 0.025 --bandwidth 100`` for a far region over a
100 MB/s link. Do not run big sizes on a shared machine.
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
JOBS = (
    "nwbstore",
    "nwbstore-warm",
    "remfile",
    "h5py-s3fs",
    "h5py-blockcache",
    "h5netcdf",
    "kerchunk",
    "zarr-nwbstore",
    "zarr-hdmf",
)
PHASES = ("open", "nwbfile", "slice", "table", "spikes")
KEY = "remote/session.nwb"
ZARR_KEY = "remote/session.nwb.zarr"
CHANNELS = 384
RATE = 30_000
CHUNKS = (30_000, 64)
SLICE = (30_000, 60_000)
MARKER = "__phase__/"
UNITS = 300
SPIKES_PER_UNIT = 1_000
TRIALS = 1_000


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

    def one_second(s: int) -> np.ndarray:
        return np.roll(block, 7 * s, axis=0)

    from hdmf.data_utils import DataChunkIterator

    series = DataChunkIterator(
        data=(row for s in range(seconds) for row in one_second(s)),
        maxshape=(seconds * RATE, CHANNELS),
        dtype=np.dtype(np.int16),
        buffer_size=RATE,
    )
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
    wrapped = H5DataIO(series, chunks=CHUNKS, compression="gzip", compression_opts=4)
    nwbfile.add_acquisition(
        ElectricalSeries(name="ElectricalSeries", data=wrapped, electrodes=region, rate=float(RATE))
    )
    nwbfile.add_trial_column("outcome", "what the animal did")
    for t in range(TRIALS):
        nwbfile.add_trial(start_time=t * 2.0, stop_time=t * 2.0 + 1.5, outcome=f"hit-{t % 7}")
    for u in range(UNITS):
        spikes = np.sort(np.random.default_rng(u).uniform(0, seconds, SPIKES_PER_UNIT))
        nwbfile.add_unit(spike_times=spikes)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    from remote_read_jobs import SPIKES, _checksum, _table_checksum

    with h5py.File(path) as f:
        trials = f["intervals/trials"]
        checksums = {
            "slice": _checksum(f["acquisition/ElectricalSeries/data"][SLICE[0] : SLICE[1]]),
            "table": _table_checksum(
                {k: v[()] for k, v in trials.items() if isinstance(v, h5py.Dataset)}
            ),
            "spikes": _checksum(f[SPIKES][()]),
        }
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
        "checksums": checksums,
    }


def _phase_stats(requests: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    from nwbstore.testing.s3proxy import RecordedRequest, count_rounds

    records = [RecordedRequest(**r) for r in requests]
    phases: dict[str, list[RecordedRequest]] = {}
    current: list[RecordedRequest] | None = None
    for r in records:
        if MARKER in r.path:
            current = phases.setdefault(r.path.rsplit("/", 1)[-1], [])
        elif current is not None:
            current.append(r)
    return {
        name: {
            "requests": len(rs),
            "rounds": count_rounds(rs),
            "mb": sum(r.bytes_out for r in rs) / MB,
        }
        for name, rs in phases.items()
    }


def run_one(
    job: str, launcher: Launcher, proxy: Proxy, work: Path, args: argparse.Namespace, cache: Path
) -> dict[str, Any]:
    out = work / f"{job}-{uuid.uuid4().hex[:8]}.json"
    err = out.with_suffix(".stderr")
    cmd = [sys.executable, str(JOBS_SCRIPT), job, "--endpoint", proxy.url]
    cmd += ["--src", f"s3://{BUCKET}/{KEY}", "--zarr-src", f"s3://{BUCKET}/{ZARR_KEY}"]
    cmd += ["--rows", *map(str, SLICE), "--out", str(out)]
    cmd += ["--concurrency", str(args.concurrency)]
    env = {
        **os.environ,
        "PYTHONPATH": _pythonpath(),
        "NWBSTORE_CACHE_DIR": str(cache),
        "NWBSTORE_CATALOG_TTL": "0",
    }
    proxy.reset()
    done = launcher.run(cmd, env, err, timeout=args.timeout)
    if done["returncode"] != 0 and not done["timed_out"]:
        tail = err.read_text(errors="replace").strip().splitlines()[-8:]
        raise SystemExit(f"job {job} failed:\n" + "\n".join(tail))
    requests = json.loads(proxy._ask("requests"))
    result = json.loads(out.read_text()) if out.exists() else {}
    stats = _phase_stats(requests)
    hung = {"seconds": args.timeout, "error": f"hangs: killed after {args.timeout:g} s"}
    return {phase: {**result.get(phase, hung), **stats.get(phase, {})} for phase in PHASES}


def _upload_zarr(local: Path, moto_url: str) -> None:
    import nwbstore

    opts = {"endpoint_url": moto_url, "key": "testing", "secret": "testing"}
    nwbstore.convert(str(local), f"s3://{BUCKET}/{ZARR_KEY}", storage_options=opts, progress=False)


def _median_row(job: str, latency: float, runs: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {"latency_ms": latency * 1000, "job": job}
    done = [p for p in PHASES if "error" not in runs[-1][p]]
    row["total_seconds"] = statistics.median(sum(r[p]["seconds"] for p in done) for r in runs)
    row["total_phases"] = len(done)
    last = runs[-1]
    for phase in PHASES:
        got = last[phase]
        if "error" in got:
            row[phase] = {"error": got["error"]}
            continue
        sums = {r[phase].get("checksum") for r in runs}
        row[phase] = {
            "seconds": statistics.median(r[phase]["seconds"] for r in runs),
            "requests": got.get("requests", 0),
            "rounds": got.get("rounds", 0),
            "mb": got.get("mb", 0.0),
            "checksum": got.get("checksum"),
        }
        if len(sums) != 1:
            row[phase]["wrong"] = "the runs read different values"
    return row


def run_all(args: argparse.Namespace, work: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    launcher = Launcher()
    local = work / "session.nwb"
    say(f"writing {args.size:g} MB of ephys as NWB ...")
    facts = build_file(local, args.size)
    say(f"  {facts['file_mb']:.1f} MB file, slice chunks {facts['slice_chunk_mb']:.2f} MB")
    rows: list[dict[str, Any]] = []
    jobs = [j for j in JOBS if j in args.jobs]
    try:
        with moto_server() as moto_url:
            moto = s3_client(moto_url)
            moto.create_bucket(Bucket=BUCKET)
            moto.upload_file(str(local), BUCKET, KEY)
            _upload_zarr(local, moto_url)
            for latency in args.latencies:
                bandwidth = args.bandwidth * MB if args.bandwidth else None
                proxy = Proxy(moto_url, latency, work, bandwidth=bandwidth)
                try:
                    for job in jobs:
                        runs = []
                        for _ in range(args.repeat):
                            cache = work / f"cache-{uuid.uuid4().hex[:8]}"
                            if job == "nwbstore-warm":  # a cold run fills the catalog cache
                                run_one("nwbstore", launcher, proxy, work, args, cache)
                            runs.append(run_one(job, launcher, proxy, work, args, cache))
                            if _hung(runs[-1]):  # it will hang again: do not wait for it twice
                                break
                        row = _median_row(job, latency, runs)
                        rows.append(row)
                        say(f"  {latency * 1000:4.0f} ms {job:16s} " + _brief(row))
                finally:
                    proxy.stop()
    finally:
        launcher.stop()
    _check_values(rows, facts["checksums"])
    facts["bandwidth_mb_s"] = args.bandwidth
    return rows, facts


def _hung(run: dict[str, Any]) -> bool:
    return any(run[phase].get("error", "").startswith("hangs") for phase in PHASES)


def _brief(row: dict[str, Any]) -> str:
    parts = []
    for phase in PHASES:
        got = row[phase]
        if "error" in got:
            parts.append(f"{phase} n/a")
        else:
            parts.append(f"{phase} {got['requests']}r/{got['rounds']}rd {got['seconds']:.2f}s")
    return "  ".join(parts) + f"  total {row['total_seconds']:.2f}s"


def _check_values(rows: list[dict[str, Any]], expected: dict[str, float]) -> None:
    """Mark every phase whose values differ from h5py's read of the local file."""
    for row in rows:
        for phase, want in expected.items():
            got = row[phase].get("checksum")
            if got is not None and got != want:
                row[phase]["wrong"] = f"checksum {got:g}, h5py's local read {want:g}"


def _cell(got: dict[str, Any]) -> str:
    if "error" in got:
        return f"fails: {got['error'][:60]}"
    cell = f"{got['requests']} / {got['rounds']} / {got['mb']:.2f} / {got['seconds']:.2f}"
    return cell + (f" **wrong values** ({got['wrong']})" if "wrong" in got else "")


def _speedups(row: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """``total`` and ``open`` time of ``remfile`` at the row's latency over the row's."""
    base = next(
        (r for r in rows if r["job"] == "remfile" and r["latency_ms"] == row["latency_ms"]), None
    )
    if base is None or row["job"] == "remfile" or base["total_phases"] != row["total_phases"]:
        return ""
    total = base["total_seconds"] / row["total_seconds"]
    if "error" in row["open"] or "error" in base["open"]:
        return f"{total:.1f}x"
    return f"{total:.1f}x / {base['open']['seconds'] / row['open']['seconds']:.1f}x"


def table(rows: list[dict[str, Any]], facts: dict[str, Any]) -> str:
    link = facts.get("bandwidth_mb_s")
    lines = [
        f"File: {facts['file_mb']:.1f} MB ({facts['rows']} rows x {CHANNELS} channels int16, "
        f"chunks {CHUNKS[0]} x {CHUNKS[1]}, gzip 4; {TRIALS} trials; {UNITS} units x "
        f"{SPIKES_PER_UNIT} spikes). Slice: rows {SLICE[0]}-{SLICE[1]} (1 s, 6 chunks, "
        f"{facts['slice_chunk_mb']:.2f} MB stored). Link: "
        + (f"{link:g} MB/s per response" if link else "loopback")
        + ". Cells: requests / rounds / MB / seconds (median). Total: seconds over the phases"
        " the method can do; vs remfile: remfile's total / this total, and the same for open.",
        "",
        "| latency | method | "
        + " | ".join(PHASES)
        + " | total s | vs remfile (total / open) | slice bytes / chunk bytes |",
        "|---|---|" + "---|" * len(PHASES) + "---|---|---|",
    ]
    for r in rows:
        ratio = f"{r['slice']['mb'] / facts['slice_chunk_mb']:.2f}x" if "mb" in r["slice"] else ""
        cells = " | ".join(_cell(r[p]) for p in PHASES)
        total = f"{r['total_seconds']:.2f}"
        speedup = _speedups(r, rows)
        lines.append(
            f"| {r['latency_ms']:.0f} ms | {r['job']} | {cells} | {total} | {speedup} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=200.0, help="MB of raw ephys data")
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.0, 0.025])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--bandwidth", type=float, default=None, help="MB/s of each response (default: loopback)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds before a job is killed as hung"
    )
    parser.add_argument("--jobs", nargs="+", default=list(JOBS), choices=JOBS)
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
