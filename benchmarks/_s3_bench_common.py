"""What the S3 benchmarks share: servers, the job launcher, running and measuring one job.

``bench_s3.py``, ``bench_nwb_write.py`` and ``bench_remote.py`` start moto's S3 server and the
counting proxy (``nwbstore.testing.s3proxy``) each in its own process, start every job in a
child process of its own through ``s3_launcher.py`` (peak RSS from ``os.wait4``), count the
job's requests on the proxy and list what it stored on moto directly, past the proxy. The job
scripts (``s3_jobs.py``, ``nwb_write_jobs.py``, ``remote_read_jobs.py``) share
:func:`job_main`: a job name and options in, a JSON result out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

BUCKET = "bench"
KINDS = ("HEAD", "GET", "LIST", "PUT", "POST", "DELETE")
MB = 1e6

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Silence :func:`say` (``--quiet``)."""
    global _quiet
    _quiet = quiet


def say(message: str) -> None:
    """Progress on stderr, unless ``--quiet``."""
    if not _quiet:
        print(message, file=sys.stderr, flush=True)


# -- the servers -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[Any], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with status {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not answer at {url} within 60 s")


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server in its own process on a free port of 127.0.0.1; yields its URL."""
    port = _free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{url}/moto-api/", process, "moto server")
        yield url
    finally:
        process.terminate()
        process.wait(10)


class Proxy:
    """The counting proxy in its own process (``python -m nwbstore.testing.s3proxy``).

    ``latency`` is in seconds per request, ``bandwidth`` in bytes per second of each response
    body (``None``: loopback speed).
    """

    def __init__(
        self, upstream: str, latency: float, work: Path, *, bandwidth: float | None = None
    ) -> None:
        port_file = work / f"proxy-{uuid.uuid4().hex[:8]}.port"
        cmd = [sys.executable, "-m", "nwbstore.testing.s3proxy", "--upstream", upstream]
        cmd += ["--latency", str(latency), "--port-file", str(port_file)]
        if bandwidth:
            cmd += ["--bandwidth", str(bandwidth)]
        self.process = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": _pythonpath()},
        )
        deadline = time.monotonic() + 60
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the counting proxy did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text().strip()}"

    def _ask(self, command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def reset(self) -> None:
        self._ask("reset")

    def counts(self) -> dict[str, int]:
        return dict(json.loads(self._ask("counts")))

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("stop\n")
        self.process.stdin.close()
        self.process.wait(10)


def _pythonpath() -> str:
    """Children import the nwbstore beside ``benchmarks/`` (the checkout), not another one."""
    parts = [str(HERE.parent), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)


class Launcher:
    """``s3_launcher.py`` in its own process: starts each job, returns its ``os.wait4`` usage."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "s3_launcher.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(
        self, cmd: list[str], env: dict[str, str], stderr: Path, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Run ``cmd``; ``{"returncode", "seconds", "maxrss_kb", "timed_out"}``.

        A job still running after ``timeout`` seconds is killed (``timed_out`` true).
        """
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"cmd": cmd, "env": env, "stderr": str(stderr), "timeout": timeout}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return dict(json.loads(self.process.stdout.readline()))

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


def s3_client(url: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def stored_objects(client: Any, prefix: str) -> tuple[int, int]:
    """(objects, bytes) under ``prefix`` in the bench bucket, listed on moto directly."""
    count = size = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            count += 1
            size += item["Size"]
    return count, size


def delete_prefix(client: Any, prefix: str) -> None:
    """Remove what a job stored, so moto's memory stays bounded over a long run."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})


# -- the job scripts' runner -------------------------------------------------------------------

#: A job: the parsed options in, a JSON-ready result out.
Job = Callable[[argparse.Namespace], dict[str, Any]]


def job_main(
    jobs: Mapping[str, Job],
    add_arguments: Callable[[argparse.ArgumentParser], None],
    *,
    description: str,
    endpoint_required: bool = True,
    argv: list[str] | None = None,
) -> None:
    """Parse ``JOB --endpoint URL --out FILE [options]``, run the job, write its JSON result.

    Every job script takes the job's name, ``--endpoint`` (the counting proxy; may be left
    empty where ``endpoint_required`` is false, for jobs on local disk) and ``--out``;
    ``add_arguments`` adds the script's own options.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("job", choices=sorted(jobs))
    parser.add_argument(
        "--endpoint",
        required=endpoint_required,
        default="",
        help="the S3 endpoint (the counting proxy)",
    )
    parser.add_argument("--out", type=Path, required=True, help="where the JSON result goes")
    add_arguments(parser)
    args = parser.parse_args(argv)
    result = jobs[args.job](args)
    args.out.write_text(json.dumps(result))


# -- one job ---------------------------------------------------------------------------------


@dataclass
class Run:
    """One run of one job."""

    seconds: float
    process_seconds: float
    peak_rss_mb: float
    requests: dict[str, int]
    objects: int
    stored_mb: float
    info: dict[str, Any] = field(default_factory=dict)


class JobFailed(Exception):
    """A job's process exited with an error; the message holds the end of its stderr."""


def run_job(
    job: str,
    launcher: Launcher,
    proxy: Proxy | None,
    moto: Any,
    work: Path,
    *,
    dst_name: str,
    script: Path = HERE / "s3_jobs.py",
    **options: Any,
) -> Run:
    """Run ``script job`` in a child process against ``proxy``; count, list, clean up.

    With ``proxy=None`` the job writes to local disk, under ``work``: no requests, and the
    objects are the files it stored (counted, then removed).
    """
    prefix = f"{uuid.uuid4().hex[:10]}/"
    local = work / "local" / prefix
    dst = str(local / dst_name) if proxy is None else f"s3://{BUCKET}/{prefix}{dst_name}"
    if proxy is None:
        local.mkdir(parents=True)
    out = work / f"{job}-{prefix.rstrip('/')}.json"
    endpoint = proxy.url if proxy is not None else ""
    cmd = [sys.executable, str(script), job, "--endpoint", endpoint, "--dst", dst]
    cmd += ["--out", str(out)]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        cmd += [flag, *map(str, value)] if isinstance(value, list) else [flag, str(value)]
    if proxy is not None:
        proxy.reset()
    err = work / f"{job}-{prefix.rstrip('/')}.stderr"
    done = launcher.run(cmd, {**os.environ, "PYTHONPATH": _pythonpath()}, err)
    counts = proxy.counts() if proxy is not None else {}
    if proxy is None:
        objects, size = local_objects(local)
        shutil.rmtree(local, ignore_errors=True)
    else:
        objects, size = stored_objects(moto, prefix) if done["returncode"] == 0 else (0, 0)
        delete_prefix(moto, prefix)
    if done["returncode"] != 0:
        tail = err.read_text(errors="replace").strip().splitlines()[-12:]
        raise JobFailed("\n".join(tail))
    result = json.loads(out.read_text())
    return Run(
        seconds=result.pop("seconds"),
        process_seconds=done["seconds"],
        peak_rss_mb=done["maxrss_kb"] * 1024 / MB,  # Linux reports KiB
        requests=counts,
        objects=objects,
        stored_mb=size / MB,
        info=result,
    )


def local_objects(root: Path) -> tuple[int, int]:
    """(files, bytes) under ``root``: what a job stored on local disk."""
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


@dataclass
class Row:
    """The median of ``--repeat`` runs of one job at one latency (or why it was skipped)."""

    latency_ms: float
    case: str
    method: str
    seconds: float = float("nan")
    process_seconds: float = float("nan")
    peak_rss_mb: float = float("nan")
    requests: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    stored_mb: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    skipped: str = ""
    #: The destination, where it is not the latency alone (``local``, ``S3 25 ms``).
    where: str = ""

    @property
    def total(self) -> int:
        return int(self.requests.get("total", 0))


def measure(
    latency: float,
    case: str,
    method: str,
    repeat: int,
    run: Callable[[], Run],
    *,
    label: str | None = None,
) -> Row:
    """Run a job ``repeat`` times: median times, largest peak RSS, the last run's counts.

    ``label`` names the destination in the progress lines (default: the latency in ms).
    """
    where = label if label is not None else f"{latency * 1000:.0f} ms"
    runs = []
    for i in range(repeat):
        try:
            runs.append(run())
        except JobFailed as error:
            reason = str(error).splitlines()[-1] if str(error) else "failed"
            say(
                f"  {case} / {method}: skipped, it failed:\n    "
                + str(error).replace("\n", "\n    ")
            )
            return Row(latency * 1000, case, method, skipped=reason, where=label or "")
        last = runs[-1]
        say(
            f"  {where}  {case:14s} {method:22s} run {i + 1}: "
            f"{last.seconds:7.2f} s  {last.requests.get('total', 0):6d} requests  "
            f"{last.objects:5d} objects  peak RSS {last.peak_rss_mb:5.0f} MB"
        )
    last = runs[-1]
    return Row(
        latency_ms=latency * 1000,
        case=case,
        method=method,
        seconds=statistics.median(r.seconds for r in runs),
        process_seconds=statistics.median(r.process_seconds for r in runs),
        peak_rss_mb=max(r.peak_rss_mb for r in runs),
        requests=last.requests,
        objects=last.objects,
        stored_mb=last.stored_mb,
        info=last.info,
        where=label or "",
    )
