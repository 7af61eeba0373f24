"""Benchmark: HDF5 NWB -> Zarr conversion, side by side with the alternatives, in one run.

Compared, each in its own process (wall time and peak RSS of the whole process tree):

- ``cp``: copying the HDF5 file (the floor for moving the bytes);
- ``hdmf-zarr export``: the documented ``NWBZarrIO.export`` from an ``NWBHDF5IO``;
- ``nwbstore raw``: ``nwbstore convert`` (stored chunks copied raw where possible);
- ``nwbstore transcode``: ``nwbstore convert --no-raw`` (every chunk decoded and re-encoded).

Run: ``python benchmarks/bench_convert.py --size-mb 750 3000 --repeat 3`` (``make bench``).
Reports medians and ratios to ``cp`` for each size, then peak RSS by size (it should stay flat);
machines are shared and noisy, so compare ratios. ``python + imports only`` is the fixed cost of
starting an interpreter with nwbstore's backends loaded, the floor under any Python tool.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make_file(path: Path, size_mb: float) -> None:
    """An NWB file whose bulk is int16 ephys split over gzip+shuffle, Zstd and Blosc."""
    from datetime import UTC, datetime

    import hdf5plugin
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    nwbfile = NWBFile(
        session_description="benchmark",
        identifier="bench",
        session_start_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    channels = 64
    per_series = int(size_mb * 1e6 / 3 / (2 * channels))
    rng = np.random.default_rng(0)
    # low-amplitude noise plus a slow wave: compresses about 2x, like real ephys
    base = (rng.normal(0, 30, size=(per_series, channels))).astype(np.int16)
    base += (200 * np.sin(np.arange(per_series) / 3000.0)).astype(np.int16)[:, None]
    codecs = {
        "gzip_shuffle": {"compression": "gzip", "compression_opts": 4, "shuffle": True},
        "zstd": {"allow_plugin_filters": True, **hdf5plugin.Zstd(clevel=3)},
        "blosc": {
            "allow_plugin_filters": True,
            **hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE),
        },
    }
    import warnings

    warnings.filterwarnings("ignore", message=".*compression may not be available")
    for name, codec in codecs.items():
        nwbfile.add_acquisition(
            TimeSeries(
                name=name,
                data=H5DataIO(base, chunks=(32768, channels), **codec),
                unit="V",
                rate=30000.0,
            )
        )
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)


def measure(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; return (seconds, peak RSS in MB of the process and its children)."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            try:
                rss = ps.memory_info().rss + sum(
                    c.memory_info().rss for c in ps.children(recursive=True)
                )
                peak = max(peak, rss)
            except psutil.Error:
                pass
            stop.wait(0.02)

    thread = threading.Thread(target=sample)
    thread.start()
    _, err = proc.communicate()
    elapsed = time.perf_counter() - start
    stop.set()
    thread.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err.decode()[-2000:]}")
    return elapsed, peak / 1e6


HDMF_EXPORT = """
import sys
import hdf5plugin  # users must import it themselves for plugin filters (Zstd, Blosc)
from pynwb import NWBHDF5IO
from hdmf_zarr.nwb import NWBZarrIO
with NWBHDF5IO(sys.argv[1], "r") as read_io:
    with NWBZarrIO(sys.argv[2], mode="w") as export_io:
        export_io.export(src_io=read_io, write_args=dict(link_data=False))
"""


STARTUP = "import nwbstore.backends.hdf5, nwbstore.backends.zarr, nwbstore.convert"


def run_size(work: Path, size_mb: float, repeat: int, skip_hdmf: bool) -> dict[str, tuple]:
    """Benchmark one file size; return {method: (median seconds, max peak RSS MB)}."""
    work.mkdir(parents=True, exist_ok=True)
    src = work / "bench.nwb"
    if not src.exists():
        print(f"generating {src} ({size_mb:.0f} MB of data) ...", flush=True)
        make_file(src, size_mb)
    print(f"source: {src.stat().st_size / 1e6:.0f} MB on disk", flush=True)
    exe = sys.executable
    nwbstore_cli = [exe, "-m", "nwbstore.cli"]
    cases = {
        "cp": lambda out: ["cp", str(src), str(out)],
        "python + imports only": lambda out: [exe, "-c", STARTUP],
        "nwbstore raw": lambda out: [*nwbstore_cli, "convert", str(src), str(out), "-q"],
        "nwbstore transcode": lambda out: [
            *nwbstore_cli,
            "convert",
            str(src),
            str(out),
            "-q",
            "--no-raw",
        ],
    }
    if not skip_hdmf:
        cases["hdmf-zarr export"] = lambda out: [exe, "-c", HDMF_EXPORT, str(src), str(out)]
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for i in range(repeat):
        for name, make_cmd in cases.items():
            out = work / f"out-{name.replace(' ', '_')}{'.nwb' if name == 'cp' else '.nwb.zarr'}"
            if out.exists():
                shutil.rmtree(out) if out.is_dir() else out.unlink()
            subprocess.run(["sync"], check=False)
            seconds, rss = measure(make_cmd(out))
            results[name].append((seconds, rss))
            print(f"  run {i + 1}: {name:22s} {seconds:7.2f} s  peak RSS {rss:7.0f} MB", flush=True)
        for name in cases:
            out = work / f"out-{name.replace(' ', '_')}{'.nwb' if name == 'cp' else '.nwb.zarr'}"
            if out.exists():  # keep the disk use of a large run bounded
                shutil.rmtree(out) if out.is_dir() else out.unlink()
    cp_median = statistics.median(t for t, _ in results["cp"])
    summary = {}
    print(f"\n{size_mb:.0f} MB of data, {src.stat().st_size / 1e6:.0f} MB on disk:\n")
    print("| method | median time (s) | time / cp | peak RSS (MB) |")
    print("|---|---|---|---|")
    for name, runs in results.items():
        med = statistics.median(t for t, _ in runs)
        rss = max(r for _, r in runs)
        summary[name] = (med, rss)
        print(f"| {name} | {med:.2f} | {med / cp_median:.1f}x | {rss:.0f} |")
    raw = summary["nwbstore raw"][0]
    floor = summary["python + imports only"][0]
    print(
        f"\nnwbstore raw beyond the interpreter start: {raw - floor:.2f} s "
        f"({(raw - floor) / cp_median:.1f}x cp)"
    )
    if "hdmf-zarr export" in summary:
        print(
            f"nwbstore raw is {summary['hdmf-zarr export'][0] / raw:.1f}x faster than "
            "hdmf-zarr export"
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size-mb", type=float, nargs="+", default=[750.0], help="uncompressed data size(s)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-hdmf", action="store_true", help="leave out hdmf-zarr export")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nwbstore-bench-"))
    by_size = {
        size: run_size(work / f"{size:.0f}MB", size, args.repeat, args.skip_hdmf)
        for size in args.size_mb
    }
    if len(by_size) > 1:
        print("\npeak RSS (MB) by file size:\n")
        names = list(next(iter(by_size.values())))
        print("| method | " + " | ".join(f"{s:.0f} MB" for s in by_size) + " |")
        print("|---|" + "---|" * len(by_size))
        for name in names:
            cells = " | ".join(f"{by_size[s][name][1]:.0f}" for s in by_size)
            print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()
