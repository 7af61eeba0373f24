"""A counting, delaying and fault-injecting HTTP proxy for a loopback S3 server.

Request budgets on object storage are part of nwbstore's contract, so tests and benchmarks
need to see every request a job makes. :class:`S3Proxy` listens on ``127.0.0.1`` (a free
port), forwards each request to an upstream S3 server (moto's ``ThreadedMotoServer`` in the
test suite) and records it. It can also

- wait ``latency`` seconds before forwarding (a far-away region on loopback),
- answer a chosen fraction of requests with ``503 SlowDown`` without forwarding them,
- forward a chosen fraction but drop the connection half-way through the response body.

Requests are counted by kind: ``HEAD``, ``GET`` (an object read), ``LIST`` (a ``GET`` on a
bucket: ``list-type``, ``prefix`` or ``delimiter`` in the query, or no key), ``PUT``,
``POST`` (multipart), ``DELETE``.

Examples
--------
>>> proxy = S3Proxy("http://127.0.0.1:5000").start()   # doctest: +SKIP
>>> proxy.reset(); ...; proxy.counts["PUT"]            # doctest: +SKIP
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["RecordedRequest", "S3Proxy", "request_kind"]

#: Headers that describe one hop, not the message; never forwarded.
_HOP_HEADERS = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request the proxy saw: its kind, method, path (``/bucket/key``) and query."""

    kind: str
    method: str
    path: str
    query: str
    status: int


def request_kind(method: str, path: str, query: str) -> str:
    """Classify an S3 request as ``HEAD``/``GET``/``LIST``/``PUT``/``POST``/``DELETE``."""
    if method != "GET":
        return method
    params = parse_qs(query, keep_blank_values=True)
    key = path.lstrip("/").partition("/")[2]
    if not key or {"list-type", "prefix", "delimiter"} & set(params):
        return "LIST"
    return "GET"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self._body()
        split = urlsplit(self.path)
        kind = request_kind(self.command, split.path, split.query)
        fault = proxy._draw_fault()
        if proxy.latency:
            time.sleep(proxy.latency)
        if fault == "503":
            proxy._record(RecordedRequest(kind, self.command, split.path, split.query, 503))
            payload = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                b"<Message>Please reduce your request rate.</Message></Error>"
            )
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        status, reason, out_headers, payload = proxy._forward(
            self.command, self.path, body, headers
        )
        proxy._record(RecordedRequest(kind, self.command, split.path, split.query, status))
        self.send_response(status, reason)
        for name, value in out_headers:
            if name.lower() not in _HOP_HEADERS and name.lower() != "content-length":
                self.send_header(name, value)
        length = out_headers_length(out_headers, payload, self.command)
        self.send_header("Content-Length", str(length))
        if fault == "drop" and self.command != "HEAD" and len(payload) > 1:
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


def out_headers_length(headers: list[tuple[str, str]], payload: bytes, method: str) -> int:
    """The Content-Length to send: the upstream's for HEAD, the body's otherwise."""
    if method == "HEAD":
        for name, value in headers:
            if name.lower() == "content-length":
                return int(value)
        return 0
    return len(payload)


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: S3Proxy


class S3Proxy:
    """Forward HTTP requests to ``upstream``, counting them; optionally slow or faulty.

    Parameters
    ----------
    upstream
        Base URL of the real server, e.g. ``"http://127.0.0.1:5000"``.
    latency
        Seconds added before each request is forwarded.
    fail_fraction
        Fraction of requests answered ``503 SlowDown`` (not forwarded).
    drop_fraction
        Fraction of requests forwarded whose response is cut off half-way.
    seed
        Seed of the fault draw, so a run is reproducible.
    """

    def __init__(
        self,
        upstream: str,
        *,
        latency: float = 0.0,
        fail_fraction: float = 0.0,
        drop_fraction: float = 0.0,
        seed: int = 0,
    ) -> None:
        split = urlsplit(upstream)
        self._upstream = (split.hostname or "127.0.0.1", split.port or 80)
        self.latency = latency
        self.fail_fraction = fail_fraction
        self.drop_fraction = drop_fraction
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._local = threading.local()
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> S3Proxy:
        """Listen on a free port of 127.0.0.1 in a background thread; returns ``self``."""
        server = _ProxyServer(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> S3Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the proxy."""
        assert self._server is not None, "start() the proxy first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- what was seen -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request since the last :meth:`reset`, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def counts(self) -> Counter[str]:
        """Requests since the last :meth:`reset` by kind (``HEAD``, ``GET``, ``LIST``, ...)."""
        return Counter(r.kind for r in self.requests)

    @property
    def total(self) -> int:
        """Number of requests since the last :meth:`reset`."""
        with self._lock:
            return len(self._requests)

    def reset(self) -> None:
        """Forget the requests seen so far."""
        with self._lock:
            self._requests.clear()

    def set_faults(
        self, *, fail_fraction: float = 0.0, drop_fraction: float = 0.0, seed: int = 0
    ) -> None:
        """Change the fault rates (and reseed the draw)."""
        with self._lock:
            self.fail_fraction = fail_fraction
            self.drop_fraction = drop_fraction
            self._random = random.Random(seed)

    # -- internals ---------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _draw_fault(self) -> str | None:
        with self._lock:
            if not (self.fail_fraction or self.drop_fraction):
                return None
            draw = self._random.random()
        if draw < self.fail_fraction:
            return "503"
        if draw < self.fail_fraction + self.drop_fraction:
            return "drop"
        return None

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(*self._upstream, timeout=60)
            self._local.conn = conn
        return conn

    def _forward(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request(method, path, body=body or None, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                return response.status, response.reason, response.getheaders(), payload
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


# -- command line: a proxy in its own process ------------------------------------------------


def _serve_commands(proxy: S3Proxy, commands: Any, replies: Any) -> None:
    """Answer one command per line until ``stop`` or end of input.

    ``reset`` forgets the requests seen (``ok``); ``counts`` prints the counts by kind and
    ``total`` as one JSON line; ``latency S`` sets the injected latency (``ok``).
    """
    import json

    for line in commands:
        command, _, argument = line.strip().partition(" ")
        if command == "stop":
            break
        if command == "reset":
            proxy.reset()
            reply = "ok"
        elif command == "counts":
            requests = proxy.requests
            counts = Counter(r.kind for r in requests)
            reply = json.dumps({**counts, "total": len(requests)})
        elif command == "latency":
            proxy.latency = float(argument)
            reply = "ok"
        else:
            reply = json.dumps({"error": f"unknown command {command!r}"})
        replies.write(reply + "\n")
        replies.flush()


def main(argv: list[str] | None = None) -> None:
    """Run a proxy in this process: ``python -m nwbstore.testing.s3proxy --upstream URL``.

    The proxy listens on a free port of 127.0.0.1 and writes that port to ``--port-file``
    (written whole, then renamed, so a reader never sees half a number). It then reads
    commands on standard input, one a line, and answers each on standard output: ``reset``,
    ``counts`` (a JSON object of counts by kind plus ``total``), ``latency S`` and ``stop``
    (or end of input), so a benchmark can count the requests of a job run in another process.
    """
    import argparse
    import os
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m nwbstore.testing.s3proxy",
        description="A counting, delaying and fault-injecting proxy for a loopback S3 server.",
    )
    parser.add_argument("--upstream", required=True, help="base URL of the S3 server")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--port-file", required=True, help="where to write the port")
    parser.add_argument("--fail-fraction", type=float, default=0.0)
    parser.add_argument("--drop-fraction", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    proxy = S3Proxy(
        args.upstream,
        latency=args.latency,
        fail_fraction=args.fail_fraction,
        drop_fraction=args.drop_fraction,
        seed=args.seed,
    ).start()
    try:
        port = proxy.endpoint_url.rpartition(":")[2]
        partial = f"{args.port_file}.partial"
        with open(partial, "w") as f:
            f.write(port)
        os.replace(partial, args.port_file)
        _serve_commands(proxy, sys.stdin, sys.stdout)
    finally:
        proxy.stop()


if __name__ == "__main__":
    main()
