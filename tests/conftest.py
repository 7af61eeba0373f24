"""Shared fixtures: a real S3 server on loopback (moto ThreadedMotoServer), a bucket per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def catalog_cache_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """Point the metadata catalog cache (``NWBSTORE_CACHE_DIR``) at a fresh temporary
    directory for every test: the suite never writes to the real home, and no test sees
    another's cached catalogs."""
    path = tmp_path_factory.mktemp("nwbstore-cache")
    monkeypatch.setenv("NWBSTORE_CACHE_DIR", str(path))
    return path


@dataclass(frozen=True)
class S3Server:
    """Where the loopback S3 server listens and how to reach it."""

    endpoint_url: str

    @property
    def storage_options(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"region_name": "us-east-1"},
            "skip_instance_cache": True,
        }

    def boto3_client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def filesystem(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(**self.storage_options)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """Start moto's ThreadedMotoServer on 127.0.0.1 with a free port for the whole session."""
    from moto.server import ThreadedMotoServer

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(var, "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket on the loopback S3 server; returns its name."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_server.boto3_client().create_bucket(Bucket=name)
    return name


@dataclass
class CountingS3:
    """The loopback S3 server behind a counting (and optionally faulty) proxy."""

    proxy: Any
    bucket: str

    @property
    def endpoint_url(self) -> str:
        return str(self.proxy.endpoint_url)

    @property
    def storage_options(self) -> dict[str, Any]:
        return {**S3Server(self.endpoint_url).storage_options}

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @property
    def counts(self) -> Any:
        return self.proxy.counts

    @property
    def total(self) -> int:
        return int(self.proxy.total)

    def reset(self) -> None:
        self.proxy.reset()

    def filesystem(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(**S3Server(self.endpoint_url).storage_options)


@pytest.fixture
def counting_s3(s3_server: S3Server, s3_bucket: str) -> Iterator[CountingS3]:
    """A fresh bucket reached through :class:`nwbstore.testing.s3proxy.S3Proxy` (counts reset)."""
    from nwbstore.testing.s3proxy import S3Proxy

    proxy = S3Proxy(s3_server.endpoint_url).start()
    try:
        yield CountingS3(proxy, s3_bucket)
    finally:
        proxy.stop()
