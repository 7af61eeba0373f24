"""Benchmark: writing NWB files with nwbstore.nwb.write, side by side with hdmf-zarr and pynwb.

One run writes the same in-memory ``NWBFile`` with ``nwbstore.nwb.write`` (Zarr and HDF5),
hdmf-zarr's ``NWBZarrIO`` (to a path, or to a zarr ``FsspecStore`` over s3fs) and pynwb's
``NWBHDF5IO`` (to S3: written locally, then ``s3fs.put``, timed together), for

- a small NWB file (~100 objects as Zarr: series, electrodes table, trials, units, behavior);
- an iterator-fed ``ElectricalSeries`` (``GenericDataChunkIterator`` generating int16 data,
  384 channels) of each ``--series-gb`` size;

to local disk and to the loopback S3 server (moto behind the counting proxy, both in their
own processes, once per ``--latencies`` value). Each job runs in a child process of its own
(``benchmarks/nwb_write_jobs.py``, started by ``s3_launcher.py``): its requests by kind are
counted by the proxy, its objects listed on moto directly (locally: its files), its peak RSS
is the child's ``ru_maxrss`` from ``os.wait4``. The servers, the launcher and the measuring
are ``bench_s3.py``'s (``benchmarks/_s3_bench_common.py``).

Targets: <= 1.05 requests per stored object (nwbstore Zarr on S3); at 25 ms per request
>= 5x faster than hdmf-zarr to S3; peak RSS flat in the series' size.

Run: ``python benchmarks/bench_nwb_write.py`` (``make bench``); ``--series-gb 0.1 0.3
--repeat 1`` for a quick one. Times are medians of ``--repeat`` runs; ``time`` is the write
itself (the child times it, without starting Python, imports and building the NWBFile),
``process`` the whole child. Requests and objects are those of the last run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _s3_bench_common import (  # noqa: E402  (beside this file)
    BUCKET,
    KINDS,
    Launcher,
    Proxy,
    Row,
    measure,
    moto_server,
    run_job,
    s3_client,
    say,
    set_quiet,
)

JOBS_SCRIPT = HERE / "nwb_write_jobs.py"
HDMF = "hdmf-zarr NWBZarrIO"
NWBSTORE_ZARR = "nwbstore Zarr"
NWBSTORE_HDF5 = "nwbstore HDF5"
#: (method, job, destination name); hdmf-zarr is left out with --skip-hdmf.
METHODS = (
    (NWBSTORE_ZARR, "nwbstore-zarr", "session.nwb.zarr"),
    (HDMF, "hdmf", "session.nwb.zarr"),
    (NWBSTORE_HDF5, "nwbstore-hdf5", "session.nwb"),
    ("pynwb NWBHDF5IO", "pynwb", "session.nwb"),
)
REQUESTS_PER_OBJECT = 1.05
SPEEDUP = 5.0
SPEEDUP_LATENCY_MS = 25.0
#: "Flat": the largest series' peak RSS within this share (or RSS_SLACK_MB) of the smallest's.
RSS_FLAT = 0.10
RSS_SLACK_MB = 25.0


def _where(latency: float | None) -> str:
    return "local" if latency is None else f"S3 {latency * 1000:.0f} ms"


def _cases(series_gb: list[float]) -> list[tuple[str, dict[str, Any]]]:
    cases: list[tuple[str, dict[str, Any]]] = [("small", {"case": "small"})]
    cases += [(f"series {gb:g} GB", {"case": "series", "gb": gb}) for gb in series_gb]
    return cases


def run_all(args: argparse.Namespace, work: Path) -> list[Row]:
    """Every job at every destination: local disk first, then S3 at each latency."""
    launcher = Launcher()  # before anything large is imported: the jobs' RSS floor is theirs
    methods = [m for m in METHODS if not (args.skip_hdmf and m[0] == HDMF)]
    rows: list[Row] = []

    def at(latency: float | None, proxy: Proxy | None, moto: Any) -> None:
        for case, options in _cases(args.series_gb):
            for method, job, dst_name in methods:
                rows.append(
                    measure(
                        latency or 0.0,
                        case,
                        method,
                        args.repeat,
                        lambda job=job, dst_name=dst_name, options=options: run_job(
                            job,
                            launcher,
                            proxy,
                            moto,
                            work,
                            dst_name=dst_name,
                            script=JOBS_SCRIPT,
                            **options,
                        ),
                        label=_where(latency),
                    )
                )

    try:
        if not args.skip_local:
            at(None, None, None)
        with moto_server() as moto_url:
            moto = s3_client(moto_url)
            moto.create_bucket(Bucket=BUCKET)
            for latency in args.latencies:
                proxy = Proxy(moto_url, latency, work)
                try:
                    at(latency, proxy, moto)
                finally:
                    proxy.stop()
    finally:
        launcher.stop()
    return rows


# -- the report ------------------------------------------------------------------------------


def _hdmf_seconds(rows: list[Row]) -> dict[tuple[str, str], float]:
    return {(r.where, r.case): r.seconds for r in rows if r.method == HDMF and not r.skipped}


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| destination | case | method | requests | HEAD / GET / LIST / PUT / POST / DELETE "
        "| objects | requests / object | time (s) | vs hdmf-zarr | process (s) "
        "| peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    hdmf = _hdmf_seconds(rows)
    for r in rows:
        if r.skipped:
            lines.append(f"| {r.where} | {r.case} | {r.method} | skipped: {r.skipped} ||||||||")
            continue
        remote = r.where != "local"
        kinds = " / ".join(str(r.requests.get(k, 0)) for k in KINDS) if remote else ""
        total = f"{r.total:,}" if remote else ""
        per_object = f"{r.total / r.objects:.2f}" if remote and r.objects else ""
        reference = hdmf.get((r.where, r.case))
        versus = f"{reference / r.seconds:.1f}x faster" if reference and r.method != HDMF else ""
        lines.append(
            f"| {r.where} | {r.case} | {r.method} | {total} | {kinds} | {r.objects:,} "
            f"| {per_object} | {r.seconds:.2f} | {versus} | {r.process_seconds:.2f} "
            f"| {r.peak_rss_mb:.0f} |"
        )
    return lines


def targets(rows: list[Row], latencies: list[float]) -> list[str]:
    """One line per target and measurement: met or missed, with the number."""
    out = []
    for r in rows:
        if r.skipped or r.where == "local" or r.method not in (NWBSTORE_ZARR, NWBSTORE_HDF5):
            continue
        if r.method == NWBSTORE_ZARR and r.objects:
            per = r.total / r.objects
            verdict = "met" if per <= REQUESTS_PER_OBJECT else "missed"
            out.append(
                f"- {r.where}, {r.case}, {r.method}: {r.total:,} requests for {r.objects:,} "
                f"objects, {per:.2f} per object (target <= {REQUESTS_PER_OBJECT}): {verdict}"
            )
        elif r.method == NWBSTORE_HDF5:
            kinds = ", ".join(f"{r.requests[k]} {k}" for k in KINDS if r.requests.get(k))
            out.append(
                f"- {r.where}, {r.case}, {r.method}: one object, {r.total} requests ({kinds}; "
                "a PUT, or a multipart upload: create, parts, complete)"
            )
    hdmf = _hdmf_seconds(rows)
    if not any(abs(x * 1000 - SPEEDUP_LATENCY_MS) < 1e-6 for x in latencies):
        out.append(f"- speed-up at {SPEEDUP_LATENCY_MS:.0f} ms: not measured (no such latency)")
    for r in rows:
        if r.skipped or r.method != NWBSTORE_ZARR or r.where != _where(SPEEDUP_LATENCY_MS / 1000):
            continue
        reference = hdmf.get((r.where, r.case))
        if reference is None:
            out.append(f"- {r.where}, {r.case}: no hdmf-zarr time to compare with")
            continue
        speedup = reference / r.seconds
        verdict = "met" if speedup >= SPEEDUP else "missed"
        out.append(
            f"- {r.where}, {r.case}: nwbstore Zarr {speedup:.1f}x faster than hdmf-zarr "
            f"({r.seconds:.2f} s against {reference:.2f} s; target >= {SPEEDUP:.0f}x): {verdict}"
        )
    series = [r for r in rows if r.case.startswith("series") and not r.skipped]
    sizes = sorted({float(r.case.split()[1]) for r in series})
    if len(sizes) < 2:
        out.append("- peak RSS flat in data size: not measured (give two --series-gb sizes)")
        return out
    small, large = f"series {sizes[0]:g} GB", f"series {sizes[-1]:g} GB"
    for where in dict.fromkeys(r.where for r in series):
        for method in dict.fromkeys(r.method for r in series):
            pair = {r.case: r for r in series if r.where == where and r.method == method}
            if small not in pair or large not in pair:
                continue
            a, b = pair[small].peak_rss_mb, pair[large].peak_rss_mb
            flat = b <= a + max(RSS_FLAT * a, RSS_SLACK_MB)
            verdict = (
                ("met" if flat else "missed")
                if method.startswith("nwbstore")
                else ("flat" if flat else "grows")
            )
            out.append(
                f"- {where}, {method}: peak RSS {a:.0f} MB at {sizes[0]:g} GB, {b:.0f} MB at "
                f"{sizes[-1]:g} GB (flat: within {RSS_FLAT:.0%} or {RSS_SLACK_MB:.0f} MB): "
                f"{verdict}"
            )
    return out


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--latencies",
        default="0,0.025",
        help="seconds per request on the S3 server, comma-separated",
    )
    parser.add_argument(
        "--series-gb", type=float, nargs="+", default=[2.0], help="series sizes (GB of int16)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per job (median time)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-hdmf", action="store_true", help="leave out hdmf-zarr")
    parser.add_argument("--skip-local", action="store_true", help="leave out local disk")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    parser.add_argument("--quiet", action="store_true", help="only the tables")
    args = parser.parse_args()
    set_quiet(args.quiet)
    args.latencies = [float(x) for x in args.latencies.split(",") if x.strip()]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nwbstore-bench-nwb-"))
    work.mkdir(parents=True, exist_ok=True)
    say(f"work directory {work}")
    rows = run_all(args, work)
    lines = [
        f"Write NWB files ({args.repeat} run(s), median time; requests and objects of the last "
        "run; series: int16, 384 channels, GenericDataChunkIterator, chunks 30,000 x 64, "
        "buffer 30,000 x 384):",
        "",
        *table(rows),
        "",
        f"Targets: <= {REQUESTS_PER_OBJECT} requests per object; at {SPEEDUP_LATENCY_MS:.0f} ms "
        f">= {SPEEDUP:.0f}x faster than hdmf-zarr to S3; peak RSS flat in data size.",
        "",
        *targets(rows, args.latencies),
    ]
    print("\n".join(lines))
    if args.json:
        payload = {
            "arguments": {k: str(v) for k, v in vars(args).items()},
            "rows": [asdict(r) for r in rows],
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str))


if __name__ == "__main__":
    main()
