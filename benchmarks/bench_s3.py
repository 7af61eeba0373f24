"""Benchmark: writing to S3 (loopback moto server), side by side with the alternatives.

One run starts moto's S3 server and the counting proxy (``nwbstore.testing.s3proxy``), each in
its own process, once per injected latency (``--latencies 0,0.025``: 0 and 25 ms per request),
and measures each job in a child process of its own (``benchmarks/s3_jobs.py``): the requests
it made by kind (counted by the proxy), the objects it stored (listed on moto directly, past the
proxy), its time, and its peak RSS (``ru_maxrss`` of the child from ``os.wait4``).
The servers, the launcher and the measuring are shared with ``bench_nwb_write.py``
(``benchmarks/_s3_bench_common.py``).

- Convert the rich sample NWB file and a generated ephys NWB file (``--ephys-mb``) to S3 Zarr
  with ``nwbstore.convert``; against ``s3fs.put`` of the source file(s) and hdmf-zarr's
  ``NWBZarrIO.export`` to a zarr ``FsspecStore`` on the same server (skipped, with the reason,
  where it fails). Targets: time <= 1.2x put at 0 ms and <= 1.5x at 25 ms; <= 1.05 requests
  per stored object.
- Stream ``--stream-gb`` GB of int16 ephys (384 channels) in 30,000-row blocks with
  ``ds.append`` into an nwbstore Zarr dataset on S3; against s3fs ``pipe`` of the same chunks,
  encoded beforehand, at the same concurrency. Targets: PUTs = chunks + metadata; peak RSS <=
  one chunk row + chunks in flight + 100 MB; throughput >= 80% of the pipe's.

Run: ``python benchmarks/bench_s3.py`` (``make bench``); ``--stream-gb 0.2 --ephys-mb 50
--repeat 1`` for a quick one. Times are medians of ``--repeat`` runs; ``time`` is the job
itself (the child times it, without starting Python and importing), ``process`` the whole
child. Requests and objects are those of the last run. ``--json FILE`` writes every number.
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

import s3_jobs  # noqa: E402  (beside this file)
from _s3_bench_common import (  # noqa: E402
    BUCKET,
    KINDS,
    MB,
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

#: Metadata PUTs a stream may cost (the issue's budget): the array's zarr.json and the root's,
#: which the write path PUTs twice (If-None-Match:* at creation, consolidated at close).
STREAM_METADATA = 3


# -- the sources -----------------------------------------------------------------------------


def make_sources(work: Path, ephys_mb: float) -> dict[str, list[Path]]:
    """The rich sample (with the file it links to) and a generated ephys NWB file."""
    from bench_convert import make_file

    from nwbstore.testing.nwb_samples import build_external_nwb, build_rich_nwb

    rich_dir = work / "rich"
    rich_dir.mkdir(parents=True, exist_ok=True)
    external = build_external_nwb(rich_dir / "external.nwb")
    rich = build_rich_nwb(rich_dir / "rich.nwb", external=external)
    ephys = work / f"ephys-{ephys_mb:.0f}MB.nwb"
    if not ephys.exists():
        say(f"generating {ephys} ({ephys_mb:.0f} MB of data) ...")
        make_file(ephys, ephys_mb)
    return {"rich sample": [rich, external], f"ephys {ephys_mb:.0f} MB": [ephys]}


# -- the report ------------------------------------------------------------------------------


def _ms(row: Row) -> str:
    return f"{row.latency_ms:.0f} ms"


def convert_table(rows: list[Row]) -> list[str]:
    lines = [
        "| latency | source | method | requests | HEAD / GET / LIST / PUT / POST | objects "
        "| requests / object | time (s) | time / put | process (s) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    puts = {(r.latency_ms, r.case): r.seconds for r in rows if r.method == "s3fs put"}
    for r in rows:
        if r.skipped:
            lines.append(f"| {_ms(r)} | {r.case} | {r.method} | skipped: {r.skipped} |||||||")
            continue
        kinds = " / ".join(str(r.requests.get(k, 0)) for k in KINDS[:5])
        put = puts.get((r.latency_ms, r.case))
        ratio = f"{r.seconds / put:.2f}x" if put else ""
        per_object = f"{r.total / r.objects:.2f}" if r.objects else ""
        lines.append(
            f"| {_ms(r)} | {r.case} | {r.method} | {r.total:,} | {kinds} | {r.objects:,} "
            f"| {per_object} | {r.seconds:.2f} | {ratio} | {r.process_seconds:.2f} "
            f"| {r.peak_rss_mb:.0f} |"
        )
    return lines


def stream_table(rows: list[Row], concurrency: int) -> list[str]:
    lines = [
        "| latency | method | concurrency | PUTs | chunks + metadata | other requests "
        "| time (s) | MB/s (raw) | vs pipe | peak RSS (MB) | RSS before (MB) | RSS target (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    chunk_row_mb = s3_jobs.CHUNKS[0] * s3_jobs.CHANNELS * 2 / MB
    chunk_mb = s3_jobs.CHUNKS[0] * s3_jobs.CHUNKS[1] * 2 / MB
    block_mb = s3_jobs.BLOCK_ROWS * s3_jobs.CHANNELS * 2 / MB  # the job's own input block
    pipes = {r.latency_ms: r for r in rows if r.method == "s3fs pipe" and not r.skipped}
    for r in rows:
        if r.skipped:
            lines.append(f"| {_ms(r)} | {r.method} | skipped: {r.skipped} |||||||||")
            continue
        chunks = s3_jobs.stream_chunks(int(r.info["rows"]))
        expected = chunks + (STREAM_METADATA if r.method != "s3fs pipe" else 0)
        puts = r.requests.get("PUT", 0)
        other = r.total - puts
        speed = r.info["raw_bytes"] / MB / r.seconds
        pipe = pipes.get(r.latency_ms)
        versus = f"{pipe.seconds / r.seconds:.0%}" if pipe and r is not pipe else ""
        used = r.info.get("concurrency") or "zarr default"
        before = r.info.get("rss_before_mb", float("nan"))
        target = chunk_row_mb + concurrency * chunk_mb + 100 + block_mb
        lines.append(
            f"| {_ms(r)} | {r.method} | {used} | {puts:,} | {expected:,} | {other:,} "
            f"| {r.seconds:.2f} | {speed:.0f} | {versus} | {r.peak_rss_mb:.0f} "
            f"| {before:.0f} | {target:.0f} |"
        )
    return lines


def targets(rows: list[Row]) -> list[str]:
    """One line per target: met or missed, with the number."""
    out = []
    puts = {(r.latency_ms, r.case): r.seconds for r in rows if r.method == "s3fs put"}
    for r in rows:
        if r.method != "nwbstore convert" or r.skipped:
            continue
        limit = 1.2 if r.latency_ms == 0 else 1.5
        put = puts.get((r.latency_ms, r.case))
        if put:
            ratio = r.seconds / put
            verdict = "met" if ratio <= limit else "missed"
            out.append(
                f"- {r.case}, {_ms(r)}: time {ratio:.2f}x put (target <= {limit}x): {verdict}"
            )
        if r.objects:
            per = r.total / r.objects
            verdict = "met" if per <= 1.05 else "missed"
            out.append(
                f"- {r.case}, {_ms(r)}: {per:.2f} requests per object (target <= 1.05): {verdict}"
            )
    pipes = {r.latency_ms: r for r in rows if r.method == "s3fs pipe" and not r.skipped}
    for r in rows:
        if r.method != "nwbstore append" or r.skipped:
            continue
        chunks = s3_jobs.stream_chunks(int(r.info["rows"]))
        puts_ = r.requests.get("PUT", 0)
        verdict = "met" if puts_ <= chunks + STREAM_METADATA and r.total == puts_ else "missed"
        out.append(
            f"- stream, {_ms(r)}: {puts_:,} PUTs and {r.total - puts_:,} other requests for "
            f"{chunks:,} chunks + {STREAM_METADATA} metadata documents: {verdict}"
        )
        pipe = pipes.get(r.latency_ms)
        if pipe:
            share = pipe.seconds / r.seconds
            verdict = "met" if share >= 0.8 else "missed"
            out.append(
                f"- stream, {_ms(r)}: {share:.0%} of the pipe's throughput (>= 80%): {verdict}"
            )
    return out


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--latencies", default="0,0.025", help="seconds per request, comma-separated"
    )
    parser.add_argument("--ephys-mb", type=float, default=200.0, help="ephys NWB file data size")
    parser.add_argument("--stream-gb", type=float, default=2.0, help="GB of raw data streamed")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-hdmf", action="store_true", help="leave out hdmf-zarr export")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    parser.add_argument("--quiet", action="store_true", help="only the tables")
    args = parser.parse_args()
    set_quiet(args.quiet)
    latencies = [float(x) for x in args.latencies.split(",") if x.strip()]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nwbstore-bench-s3-"))
    work.mkdir(parents=True, exist_ok=True)
    launcher = Launcher()  # before pynwb is imported: the jobs' RSS floor is its own
    sources = make_sources(work, args.ephys_mb)
    for name, files in sources.items():
        say(f"source {name}: {sum(f.stat().st_size for f in files) / MB:.1f} MB on disk")
    convert_rows: list[Row] = []
    stream_rows: list[Row] = []
    with moto_server() as moto_url:
        moto = s3_client(moto_url)
        moto.create_bucket(Bucket=BUCKET)
        for latency in latencies:
            proxy = Proxy(moto_url, latency, work)
            try:
                for case, files in sources.items():
                    zarr_name = files[0].name + ".zarr"
                    jobs: list[tuple[str, str, dict[str, Any]]] = [
                        ("s3fs put", "put", {"dst_name": "", "src": files}),
                        ("nwbstore convert", "convert", {"dst_name": zarr_name, "src": files[:1]}),
                    ]
                    if not args.skip_hdmf:
                        jobs.append(
                            ("hdmf-zarr export", "hdmf", {"dst_name": zarr_name, "src": files[:1]})
                        )
                    for method, job, options in jobs:
                        convert_rows.append(
                            measure(
                                latency,
                                case,
                                method,
                                args.repeat,
                                lambda job=job, options=options, proxy=proxy: run_job(
                                    job,
                                    launcher,
                                    proxy,
                                    moto,
                                    work,
                                    concurrency=args.concurrency,
                                    **options,
                                ),
                            )
                        )
                for method, job in (("s3fs pipe", "pipe"), ("nwbstore append", "stream")):
                    stream_rows.append(
                        measure(
                            latency,
                            f"stream {args.stream_gb:g} GB",
                            method,
                            args.repeat,
                            lambda job=job, proxy=proxy: run_job(
                                job,
                                launcher,
                                proxy,
                                moto,
                                work,
                                dst_name="stream.zarr",
                                gb=args.stream_gb,
                                concurrency=args.concurrency,
                            ),
                        )
                    )
            finally:
                proxy.stop()
    launcher.stop()
    lines = [
        f"Convert to S3 Zarr ({args.repeat} run(s), median time; requests and objects of the "
        "last run):",
        "",
        *convert_table(convert_rows),
        "",
        f"Stream {args.stream_gb:g} GB of int16 ephys ({s3_jobs.CHANNELS} channels) in "
        f"{s3_jobs.BLOCK_ROWS:,}-row blocks, chunks {s3_jobs.CHUNKS[0]:,} x {s3_jobs.CHUNKS[1]} "
        "(zstd 3):",
        "",
        *stream_table(stream_rows, args.concurrency),
        "",
        "Targets:",
        "",
        *targets(convert_rows + stream_rows),
    ]
    print("\n".join(lines))
    if args.json:
        payload = {
            "arguments": {k: str(v) for k, v in vars(args).items()},
            "convert": [asdict(r) for r in convert_rows],
            "stream": [asdict(r) for r in stream_rows],
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str))


if __name__ == "__main__":
    main()
