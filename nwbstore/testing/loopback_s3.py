"""A throwaway S3 server on loopback for examples and demos: moto behind the counting proxy.

:func:`loopback_s3` starts moto's ``ThreadedMotoServer`` on 127.0.0.1 (a free port), puts
:class:`~nwbstore.testing.s3proxy.S3Proxy` in front of it (every request counted), creates a
bucket and yields a :class:`LoopbackS3`: the ``storage_options`` that reach it and the proxy.
Needs the ``moto[server]`` and ``boto3`` packages (the test extra).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from nwbstore.testing.s3proxy import S3Proxy

__all__ = ["LoopbackS3", "loopback_s3"]


@dataclass
class LoopbackS3:
    """A running loopback S3 server (see :func:`loopback_s3`)."""

    #: The counting proxy all requests go through (``proxy.total``, ``proxy.rounds()``).
    proxy: S3Proxy
    #: The bucket that was created.
    bucket: str

    @property
    def storage_options(self) -> dict[str, Any]:
        """s3fs options that reach the server through the proxy."""
        return {
            "endpoint_url": self.proxy.endpoint_url,
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"region_name": "us-east-1"},
        }

    def url(self, key: str) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{key}"


@contextmanager
def loopback_s3(bucket: str = "example", *, latency: float = 0.0) -> Iterator[LoopbackS3]:
    """Run moto's S3 server and the counting proxy until the block ends.

    Parameters
    ----------
    bucket
        Name of the bucket to create.
    latency
        Seconds the proxy waits before forwarding each request (a remote link's round trip).
    """
    import boto3
    from moto.server import ThreadedMotoServer

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(var, "testing")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        with S3Proxy(f"http://{host}:{port}", latency=latency) as proxy:
            boto3.client(
                "s3",
                endpoint_url=proxy.endpoint_url,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                region_name="us-east-1",
            ).create_bucket(Bucket=bucket)
            proxy.reset()
            yield LoopbackS3(proxy, bucket)
    finally:
        server.stop()
