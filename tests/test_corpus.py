"""The corpus of bad inputs (tests/corpus/bad_inputs.py): named errors, never tracebacks.

For every case the Python API raises the expected class with the message fragment, and the
command line (in-process ``main``; a few as real subprocesses) exits with the expected status
(2 bad input or usage, 1 a difference) and prints no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from corpus.bad_inputs import CASES, BadInput, Built, Context

from nwbstore.cli import main
from nwbstore.errors import NwbStoreError

ROOT = Path(__file__).resolve().parents[1]
BY_NAME = {case.name: case for case in CASES}


@dataclass(frozen=True)
class IamServer:
    """A moto server that checks credentials (IAM), with one bucket."""

    endpoint_url: str
    bucket: str

    def set_auth(self, count: str) -> str:
        import requests

        response = requests.post(
            f"{self.endpoint_url}/moto-api/reset-auth", data=count.encode(), timeout=10
        )
        response.raise_for_status()
        return str(response.json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])


@pytest.fixture(scope="module")
def iam_server() -> Iterator[IamServer]:
    """A separate loopback moto server; credentials are checked only inside ``iam`` tests."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = f"corpus-iam-{uuid.uuid4().hex[:8]}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    try:
        yield IamServer(endpoint, bucket)
    finally:
        server.stop()


@pytest.fixture
def context(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Context]:
    """Where the test's ``case`` builds its input, with the servers it needs."""
    case: BadInput = request.node.callspec.params["case"]
    if case.needs == "s3":
        yield Context(tmp_path, s3=request.getfixturevalue("s3_server"))
    elif case.needs == "iam":
        iam: IamServer = request.getfixturevalue("iam_server")
        previous = iam.set_auth("0")  # process-wide in moto: restored right after the test
        try:
            yield Context(tmp_path, iam=iam)
        finally:
            iam.set_auth(previous)
    else:
        yield Context(tmp_path)


def _apply_env(monkeypatch: pytest.MonkeyPatch, built: Built) -> None:
    for key, value in built.env.items():
        if value:
            monkeypatch.setenv(key, value)
        else:
            monkeypatch.delenv(key, raising=False)


def _params(cases: list[BadInput]) -> list[Any]:
    marks = {"s3": [pytest.mark.s3], "iam": [pytest.mark.s3]}
    return [pytest.param(c, id=c.name, marks=marks.get(c.needs or "", [])) for c in cases]


API_CASES = [c for c in CASES if c.error is not None]


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", _params(API_CASES))
def test_api_raises_the_named_error(
    case: BadInput, context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = case.build(context)
    _apply_env(monkeypatch, built)
    assert built.api is not None, f"{case.name} has an error class but no API call"
    assert case.error is not None
    with pytest.raises(case.error) as info:
        built.api()
    message = str(info.value)
    assert case.fragment in message, message
    if issubclass(case.error, NwbStoreError):
        assert "\n" not in message, message
        named = built.names or _input_name(built)
        assert named is None or named in message, (named, message)


@pytest.mark.parametrize("case", _params(CASES))
def test_cli_exits_without_traceback(
    case: BadInput,
    context: Context,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    built = case.build(context)
    _apply_env(monkeypatch, built)
    assert built.cli is not None
    code = _run_main(built.cli)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == case.exit_code, output
    assert "Traceback" not in output
    assert case.fragment in output, output
    assert "s3cr3t" not in output and "AKIANOSUCHKEY" not in output  # credentials never shown
    if code == 2:
        last = captured.err.strip().splitlines()[-1]
        assert last.startswith(f"nwbstore {built.cli[0]}: error: "), captured.err


SUBPROCESS_CASES = [
    BY_NAME[name]
    for name in (
        "hdf5-flipped-superblock",
        "zarr-broken-root-json",
        "zarr-corrupt-chunk-zlib",
        "cli-chunks-zero",
        "s3-unreachable",
    )
]


@pytest.mark.parametrize("case", _params(SUBPROCESS_CASES))
def test_cli_subprocess(case: BadInput, context: Context) -> None:
    built = case.build(context)
    assert built.cli is not None
    result = subprocess.run(
        [sys.executable, "-m", "nwbstore.cli", *built.cli],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **built.env},
        timeout=120,
    )
    assert result.returncode == case.exit_code, result.stderr
    assert "Traceback" not in result.stderr
    assert case.fragment in result.stdout + result.stderr


def _input_name(built: Built) -> str | None:
    """The input's file name, which every message must name (for local inputs)."""
    if not built.cli or len(built.cli) < 2:
        return None
    target = built.cli[1]
    if "://" in target:
        return target
    return Path(target).name


def _run_main(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exit_:  # argparse usage errors
        return int(exit_.code or 0)


def test_json_storage_options_are_never_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    secret = json.dumps({"secret": "s3cr3t-never-shown"})[:-1]  # broken JSON holding a secret
    assert _run_main(["info", "s3://b/x.zarr", "--storage-options", secret]) == 2
    assert "s3cr3t" not in capsys.readouterr().err
