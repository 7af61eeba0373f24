"""Writing to S3 with credentials that may only read: a clear, early ``ReadOnlyError``.

A separate moto ``ThreadedMotoServer`` on loopback enforces IAM: a bucket holds a few objects,
one IAM user may only ``s3:GetObject``/``s3:ListBucket``, another may do everything (for setup
and for checking what the refused writes left behind, with boto3).

moto keeps its IAM switch (``settings.INITIAL_NO_AUTH_ACTION_COUNT``) per process, shared by
every server in it: each test turns enforcement on through the server's own
``/moto-api/reset-auth`` endpoint and restores the previous value afterwards, so the
session-wide ``s3_server`` fixture keeps accepting every request in the other tests.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr

import nwbstore
from nwbstore.convert import convert
from nwbstore.errors import NwbStoreError, ReadOnlyError

pytestmark = pytest.mark.s3

REGION = "us-east-1"


@dataclass(frozen=True)
class Keys:
    """An access key pair."""

    key: str
    secret: str


@dataclass(frozen=True)
class AuthS3:
    """A moto server that checks IAM permissions, a bucket, and two users' keys."""

    endpoint_url: str
    bucket: str
    reader: Keys
    admin: Keys

    def options(self, keys: Keys) -> dict[str, Any]:
        """s3fs ``storage_options`` for ``keys``."""
        return {
            "endpoint_url": self.endpoint_url,
            "key": keys.key,
            "secret": keys.secret,
            "client_kwargs": {"region_name": REGION},
            "skip_instance_cache": True,
        }

    def client(self, keys: Keys, service: str = "s3") -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=keys.key,
            aws_secret_access_key=keys.secret,
            region_name=REGION,
        )

    def keys_under(self, prefix: str) -> list[str]:
        """Object keys under ``prefix``, listed by boto3 with the admin keys."""
        listing = self.client(self.admin).list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [obj["Key"] for obj in listing.get("Contents", [])]

    def set_auth(self, count: str) -> str:
        """POST to moto's reset-auth endpoint; returns the previous setting."""
        import requests

        response = requests.post(
            f"{self.endpoint_url}/moto-api/reset-auth", data=count.encode(), timeout=10
        )
        response.raise_for_status()
        return str(response.json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])


def _policy(actions: list[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        }
    )


@pytest.fixture(scope="module")
def auth_s3() -> Iterator[AuthS3]:
    """A separate moto server on 127.0.0.1 (port 0) with a bucket and two IAM users.

    Set-up happens while moto still accepts every request; the ``enforce`` fixture then
    turns the IAM checks on for each test.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    setup = {
        "endpoint_url": endpoint,
        "aws_access_key_id": "setup",
        "aws_secret_access_key": "setup",
        "region_name": REGION,
    }
    tag = uuid.uuid4().hex[:8]
    try:
        bucket = f"perm-{tag}"
        s3 = boto3.client("s3", **setup)
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="notes/readme.txt", Body=b"hello")
        s3.put_object(Bucket=bucket, Key="notes/other.txt", Body=b"world")
        iam = boto3.client("iam", **setup)

        def user(name: str, actions: list[str]) -> Keys:
            iam.create_user(UserName=name)
            iam.put_user_policy(UserName=name, PolicyName="access", PolicyDocument=_policy(actions))
            made = iam.create_access_key(UserName=name)["AccessKey"]
            return Keys(made["AccessKeyId"], made["SecretAccessKey"])

        yield AuthS3(
            endpoint_url=endpoint,
            bucket=bucket,
            reader=user(f"reader-{tag}", ["s3:GetObject", "s3:ListBucket"]),
            admin=user(f"admin-{tag}", ["*"]),
        )
    finally:
        server.stop()


@pytest.fixture
def enforce(auth_s3: AuthS3) -> Iterator[AuthS3]:
    """IAM checks on for one test; the previous (process-wide) setting is restored after."""
    previous = auth_s3.set_auth("0")
    try:
        yield auth_s3
    finally:
        auth_s3.set_auth(previous)


@pytest.fixture(scope="module")
def h5_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("perm") / "source.h5"
    with h5py.File(path, "w") as f:
        f.attrs["identifier"] = "perm-test"
        grp = f.create_group("acquisition/ts")
        grp.create_dataset("data", data=np.arange(5000, dtype="int32"), chunks=(1000,))
        grp.create_dataset("timestamps", data=np.linspace(0, 1, 5000), compression="gzip")
    return path


def _assert_denied_message(err: BaseException, url: str) -> None:
    text = str(err)
    assert url in text
    assert "storage_options" in text
    assert "s3:PutObject" in text and "s3:DeleteObject" in text
    assert "\n" not in text


def test_fixture_enforces_the_policy(enforce: AuthS3) -> None:
    from botocore.exceptions import ClientError

    reader = enforce.client(enforce.reader)
    assert reader.get_object(Bucket=enforce.bucket, Key="notes/readme.txt")["Body"].read() == (
        b"hello"
    )
    with pytest.raises(ClientError, match="AccessDenied"):
        reader.put_object(Bucket=enforce.bucket, Key="notes/new.txt", Body=b"x")
    assert "notes/new.txt" not in enforce.keys_under("notes/")


@pytest.mark.parametrize("mode", ["w", "w-", "a"])
def test_open_for_writing_is_refused(enforce: AuthS3, mode: str) -> None:
    prefix = f"open-{mode}-{uuid.uuid4().hex[:6]}.zarr"
    url = f"s3://{enforce.bucket}/{prefix}"
    with pytest.raises(ReadOnlyError) as info:
        nwbstore.open(url, mode, storage_options=enforce.options(enforce.reader))
    assert isinstance(info.value, PermissionError)
    _assert_denied_message(info.value, url)
    assert enforce.keys_under(prefix) == []


def test_convert_is_refused_and_writes_nothing(enforce: AuthS3, h5_source: Path) -> None:
    prefix = f"out-{uuid.uuid4().hex[:6]}.nwb.zarr"
    url = f"s3://{enforce.bucket}/{prefix}"
    with pytest.raises(ReadOnlyError, match=re.escape(url)) as info:
        convert(h5_source, url, storage_options=enforce.options(enforce.reader), progress=False)
    _assert_denied_message(info.value, url)
    assert enforce.keys_under(prefix) == []
    assert enforce.keys_under("") == ["notes/other.txt", "notes/readme.txt"]


def test_convert_reads_no_chunk_before_refusing(
    enforce: AuthS3, caplog: pytest.LogCaptureFixture
) -> None:
    """The refusal comes from the first write, before any dataset is read or copied.

    The source is a Zarr store in the same bucket (readable with the reader's keys); the
    server's own request log (werkzeug) shows which source objects the conversion fetched.
    """
    src_prefix = f"src-{uuid.uuid4().hex[:6]}.zarr"
    root = zarr.open_group(
        f"s3://{enforce.bucket}/{src_prefix}",
        mode="w",
        storage_options=enforce.options(enforce.admin),
    )
    root.create_array("data", data=np.arange(400, dtype="int16"), chunks=(100,))
    assert any("/data/c/" in k for k in enforce.keys_under(src_prefix))
    dst_prefix = f"dst-{uuid.uuid4().hex[:6]}.nwb.zarr"
    url = f"s3://{enforce.bucket}/{dst_prefix}"
    with (
        caplog.at_level(logging.INFO, logger="werkzeug"),
        pytest.raises(ReadOnlyError, match=re.escape(url)),
    ):
        convert(
            f"s3://{enforce.bucket}/{src_prefix}",
            url,
            storage_options=enforce.options(enforce.reader),
            progress=False,
        )
    requests = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    source_gets = [r for r in requests if f"GET /{enforce.bucket}/{src_prefix}/" in r]
    # the log is captured: the source was opened (its metadata read), then the write refused
    assert any(f"/{src_prefix}/zarr.json " in r for r in source_gets), requests
    assert any(f"PUT /{enforce.bucket}/{dst_prefix}/zarr.json" in r for r in requests)
    assert not [r for r in source_gets if "/data/c/" in r]
    assert enforce.keys_under(dst_prefix) == []


def test_cli_convert_is_a_one_line_error(enforce: AuthS3, h5_source: Path) -> None:
    prefix = f"cli-{uuid.uuid4().hex[:6]}.nwb.zarr"
    url = f"s3://{enforce.bucket}/{prefix}"
    options = enforce.options(enforce.reader)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nwbstore.cli",
            "convert",
            str(h5_source),
            url,
            "--storage-options",
            json.dumps(options),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, repr(proc.stderr)
    assert lines[0].startswith("nwbstore convert: error: ")
    assert url in lines[0] and "--storage-options" in lines[0]
    assert enforce.keys_under(prefix) == []


def test_reading_with_read_only_keys_still_works(enforce: AuthS3) -> None:
    prefix = f"readable-{uuid.uuid4().hex[:6]}.zarr"
    url = f"s3://{enforce.bucket}/{prefix}"
    values = np.arange(60, dtype="float64").reshape(6, 10)
    with nwbstore.open(url, "w", storage_options=enforce.options(enforce.admin)) as store:
        store.root.create_group("acquisition").create_dataset("x", data=values)
        store.root.attrs["identifier"] = "readable"
    written = zarr.open_group(url, mode="r", storage_options=enforce.options(enforce.admin))
    np.testing.assert_array_equal(written["acquisition/x"][...], values)
    before = enforce.keys_under(prefix)
    assert f"{prefix}/zarr.json" in before

    with nwbstore.open(url, "r", storage_options=enforce.options(enforce.reader)) as store:
        np.testing.assert_array_equal(store["acquisition/x"][...], values)
        assert store.root.attrs["identifier"] == "readable"
    assert enforce.keys_under(prefix) == before


def test_writing_into_an_existing_store_is_refused(enforce: AuthS3) -> None:
    """Mode ``"a"`` on an existing store writes nothing at open; the first write is refused."""
    prefix = f"existing-{uuid.uuid4().hex[:6]}.zarr"
    url = f"s3://{enforce.bucket}/{prefix}"
    with nwbstore.open(url, "w", storage_options=enforce.options(enforce.admin)) as store:
        store.root.create_dataset("x", data=[1, 2, 3])
    before = {
        k: enforce.client(enforce.admin).get_object(Bucket=enforce.bucket, Key=k)["Body"].read()
        for k in enforce.keys_under(prefix)
    }
    store = nwbstore.open(url, "a", storage_options=enforce.options(enforce.reader))
    with pytest.raises(NwbStoreError, match=re.escape(url)) as info:
        store.root.attrs["note"] = "not allowed"
    assert isinstance(info.value, ReadOnlyError)
    store.close()  # nothing was changed, so nothing to consolidate
    after = {
        k: enforce.client(enforce.admin).get_object(Bucket=enforce.bucket, Key=k)["Body"].read()
        for k in enforce.keys_under(prefix)
    }
    assert after == before
