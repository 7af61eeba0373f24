"""The fault-injecting proxy itself: each fault does what it says, and is counted.

Requests go through plain ``http.client`` (no SDK retries hide anything) to moto's
ThreadedMotoServer behind :class:`nwbstore.testing.s3proxy.S3Proxy`.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from nwbstore.testing.s3proxy import (
    S3Proxy,
    closed_port_url,
    request_kind,
    silent_endpoint,
)

pytestmark = pytest.mark.s3


@pytest.fixture
def proxy(s3_server: Any) -> Iterator[S3Proxy]:
    with S3Proxy(s3_server.endpoint_url) as p:
        yield p


def _request(
    proxy: S3Proxy, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes]:
    split = urlsplit(proxy.endpoint_url)
    conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=10)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _client(proxy: S3Proxy) -> Any:
    """A boto3 client through the proxy that makes exactly one attempt per call."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=proxy.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def _upstream_keys(s3_server: Any, bucket: str) -> list[str]:
    listing = s3_server.boto3_client().list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in listing.get("Contents", [])]


def test_forwards_and_counts(proxy: S3Proxy, s3_bucket: str) -> None:
    client = _client(proxy)
    client.put_object(Bucket=s3_bucket, Key="a", Body=b"hello")
    assert client.get_object(Bucket=s3_bucket, Key="a")["Body"].read() == b"hello"
    assert client.head_object(Bucket=s3_bucket, Key="a")["ContentLength"] == 5
    assert [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]] == ["a"]
    client.delete_object(Bucket=s3_bucket, Key="a")
    assert proxy.counts == {"PUT": 1, "GET": 1, "HEAD": 1, "LIST": 1, "DELETE": 1}
    assert proxy.total == 5 and not proxy.faults
    proxy.reset()
    assert proxy.total == 0


@pytest.mark.parametrize(("status", "code"), [(503, b"SlowDown"), (500, b"InternalError")])
def test_fail_status(
    proxy: S3Proxy, s3_server: Any, s3_bucket: str, status: int, code: bytes
) -> None:
    proxy.set_faults(fail_fraction=1.0, fail_status=status)
    got, body = _request(proxy, "PUT", f"/{s3_bucket}/a", b"x")
    assert got == status and b"<Code>" + code + b"</Code>" in body
    assert _upstream_keys(s3_server, s3_bucket) == []  # not forwarded
    assert proxy.faults == {str(status): 1}
    assert proxy.requests[0].status == status


def test_fault_kinds_restrict_the_faults(proxy: S3Proxy, s3_bucket: str) -> None:
    proxy.set_faults(fail_fraction=1.0, fault_kinds={"PUT"})
    assert _request(proxy, "PUT", f"/{s3_bucket}/a", b"x")[0] == 503
    assert _request(proxy, "GET", f"/{s3_bucket}?list-type=2")[0] == 200
    assert _request(proxy, "HEAD", f"/{s3_bucket}/a")[0] == 404
    assert proxy.faults == {"503": 1}
    with pytest.raises(ValueError, match="fault_kinds"):
        proxy.set_faults(fail_fraction=1.0, fault_kinds={"PATCH"})


def test_reset_closes_without_answer_and_does_not_forward(
    proxy: S3Proxy, s3_server: Any, s3_bucket: str
) -> None:
    proxy.set_faults(reset_fraction=1.0)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        _request(proxy, "PUT", f"/{s3_bucket}/a", b"x")
    assert _upstream_keys(s3_server, s3_bucket) == []
    assert proxy.faults == {"reset": 1} and proxy.requests[0].status == 0


def test_lose_forwards_then_closes(proxy: S3Proxy, s3_server: Any, s3_bucket: str) -> None:
    proxy.set_faults(lose_fraction=1.0)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        _request(proxy, "PUT", f"/{s3_bucket}/a", b"x")
    assert _upstream_keys(s3_server, s3_bucket) == ["a"]  # it took effect
    assert proxy.faults == {"lose": 1} and proxy.requests[0].status == 200


def test_drop_cuts_the_body(proxy: S3Proxy, s3_bucket: str) -> None:
    from botocore.exceptions import BotoCoreError

    client = _client(proxy)
    client.put_object(Bucket=s3_bucket, Key="a", Body=b"0123456789" * 10)
    proxy.set_faults(drop_fraction=1.0, fault_kinds={"GET"})
    with pytest.raises((BotoCoreError, http.client.IncompleteRead)):
        client.get_object(Bucket=s3_bucket, Key="a")["Body"].read()
    assert proxy.faults == {"drop": 1}
    assert proxy.requests[-1].kind == "GET" and proxy.requests[-1].status == 200


def test_max_faults_and_seed(proxy: S3Proxy, s3_bucket: str) -> None:
    proxy.set_faults(fail_fraction=1.0, max_faults=2)
    statuses = [_request(proxy, "HEAD", f"/{s3_bucket}/a")[0] for _ in range(4)]
    assert statuses == [503, 503, 404, 404]

    def draws(seed: int) -> list[int]:
        proxy.set_faults(fail_fraction=0.5, seed=seed)
        return [_request(proxy, "HEAD", f"/{s3_bucket}/a")[0] for _ in range(12)]

    assert draws(4) == draws(4)
    assert {503, 404} == set(draws(4))


def test_silent_endpoint_accepts_and_never_answers() -> None:
    with silent_endpoint() as silent:
        split = urlsplit(silent.endpoint_url)
        with socket.create_connection((split.hostname, split.port), timeout=2) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                sock.recv(1)
        assert silent.connections == 1


def test_closed_port_refuses() -> None:
    split = urlsplit(closed_port_url())
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((split.hostname, split.port), timeout=2).close()


def test_request_kind() -> None:
    assert request_kind("GET", "/b/k", "") == "GET"
    assert request_kind("GET", "/b", "") == "LIST"
    assert request_kind("GET", "/b/k", "list-type=2&prefix=k/") == "LIST"
    assert request_kind("PUT", "/b/k", "") == "PUT"


def test_records_range_bytes_and_times(proxy: S3Proxy, s3_bucket: str) -> None:
    client = _client(proxy)
    client.put_object(Bucket=s3_bucket, Key="a", Body=b"0123456789" * 10)
    proxy.reset()
    body = client.get_object(Bucket=s3_bucket, Key="a", Range="bytes=10-29")["Body"].read()
    assert body == b"0123456789" * 2
    client.head_object(Bucket=s3_bucket, Key="a")
    get, head = proxy.requests
    assert get.range == "bytes=10-29" and get.bytes_out == 20
    assert head.range is None and head.bytes_out == 0
    assert 0 < get.start <= get.end <= head.start <= head.end
    assert proxy.bytes_out == 20


def test_rounds_sequential_and_concurrent(proxy: S3Proxy, s3_bucket: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client = _client(proxy)
    client.put_object(Bucket=s3_bucket, Key="a", Body=b"x" * 100)
    proxy.latency = 0.1
    proxy.reset()
    for _ in range(3):
        client.head_object(Bucket=s3_bucket, Key="a")
    assert proxy.total == 3 and proxy.rounds() == 3
    proxy.reset()
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda _: _request(proxy, "HEAD", f"/{s3_bucket}/a"), range(4)))
    assert proxy.total == 4 and proxy.rounds() == 1
    proxy.reset()
    assert proxy.rounds() == 0 and proxy.bytes_out == 0


def test_count_rounds_rule() -> None:
    from nwbstore.testing.s3proxy import RecordedRequest, count_rounds

    def req(start: float, end: float) -> RecordedRequest:
        return RecordedRequest("GET", "GET", "/b/k", "", 200, start=start, end=end)

    # B overlaps A; C starts after A ended but before B ended: one round; D after all: two
    assert count_rounds([req(0, 5), req(1, 6), req(5.5, 9), req(10, 11)]) == 2
    assert count_rounds([req(2, 3), req(0, 1)]) == 2
    assert count_rounds([]) == 0


def test_stats_command(proxy: S3Proxy, s3_bucket: str) -> None:
    import io
    import json

    from nwbstore.testing.s3proxy import _serve_commands

    client = _client(proxy)
    client.put_object(Bucket=s3_bucket, Key="a", Body=b"abc")
    client.get_object(Bucket=s3_bucket, Key="a")["Body"].read()
    out = io.StringIO()
    _serve_commands(proxy, io.StringIO("stats\ncounts\nrequests\n"), out)
    stats, counts, requests = (json.loads(line) for line in out.getvalue().splitlines())
    assert stats == {"total": 2, "rounds": 2, "bytes_out": 3}
    assert counts == {"PUT": 1, "GET": 1, "total": 2}
    assert [(r["kind"], r["bytes_out"], r["path"]) for r in requests] == [
        ("PUT", 0, f"/{s3_bucket}/a"),
        ("GET", 3, f"/{s3_bucket}/a"),
    ]


def test_bandwidth_paces_each_body(s3_server: Any, s3_bucket: str) -> None:
    import time

    body = bytes(range(256)) * 1200  # 307,200 bytes: >= 0.3 s at 1 MB/s
    with S3Proxy(s3_server.endpoint_url) as fast:
        client = _client(fast)
        client.put_object(Bucket=s3_bucket, Key="a", Body=body)
        assert client.get_object(Bucket=s3_bucket, Key="a")["Body"].read() == body
    with S3Proxy(s3_server.endpoint_url, bandwidth=1e6) as slow:
        client = _client(slow)
        began = time.monotonic()
        assert client.get_object(Bucket=s3_bucket, Key="a")["Body"].read() == body
        elapsed = time.monotonic() - began
        client.head_object(Bucket=s3_bucket, Key="a")  # no body: not paced
        get, head = slow.requests
    assert elapsed >= 0.2
    assert get.bytes_out == len(body) and get.end - get.start >= 0.2  # the paced transfer
    # the paced end is never after the client has the whole body: still two rounds
    assert get.end <= head.start and head.bytes_out == 0


def test_bandwidth_checked_and_set_by_command(proxy: S3Proxy) -> None:
    import io
    import json

    from nwbstore.testing.s3proxy import _serve_commands

    assert proxy.bandwidth is None
    with pytest.raises(ValueError, match="bandwidth"):
        S3Proxy("http://127.0.0.1:1", bandwidth=-5)
    out = io.StringIO()
    _serve_commands(proxy, io.StringIO("bandwidth 2500000\n"), out)
    assert out.getvalue() == "ok\n" and proxy.bandwidth == 2.5e6
    out = io.StringIO()
    _serve_commands(proxy, io.StringIO("bandwidth -1\nbandwidth none\n"), out)
    error, ok = out.getvalue().splitlines()
    assert "bandwidth" in json.loads(error)["error"] and ok == "ok"
    assert proxy.bandwidth is None


def test_a_body_the_client_abandons_is_recorded_as_sent(s3_server: Any, s3_bucket: str) -> None:
    """A whole-object GET whose reader closes after the headers (remfile's size probe) counts
    the bytes written before the close, not the whole object."""
    import time

    body = bytes(range(256)) * 4096  # 1 MiB: 1 s at 1 MB/s
    with S3Proxy(s3_server.endpoint_url, bandwidth=1e6) as slow:
        client = _client(slow)
        client.put_object(Bucket=s3_bucket, Key="a", Body=body)
        url = client.generate_presigned_url("get_object", Params={"Bucket": s3_bucket, "Key": "a"})
        slow.reset()
        split = urlsplit(url)
        connection = http.client.HTTPConnection(split.hostname, split.port, timeout=10)
        connection.request("GET", f"{split.path}?{split.query}")
        response = connection.getresponse()
        assert response.status == 200 and len(response.read(1000)) == 1000
        connection.sock.shutdown(socket.SHUT_RDWR)
        connection.close()
        deadline = time.monotonic() + 5
        while slow.requests[0].bytes_out == len(body) and time.monotonic() < deadline:
            time.sleep(0.05)
        (get,) = slow.requests
    assert 1000 <= get.bytes_out < len(body) // 2
    assert get.end - get.start < 0.6  # stopped when the client left, not 1 s later
