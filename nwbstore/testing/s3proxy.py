"""A counting, delaying and fault-injecting HTTP proxy for a loopback S3 server.

Request budgets on object storage are part of nwbstore's contract, so tests and benchmarks
need to see every request a job makes. :class:`S3Proxy` listens on ``127.0.0.1`` (a free
port), forwards each request to an upstream S3 server (moto's ``ThreadedMotoServer`` in the
test suite) and records it. It can also

- wait ``latency`` seconds before forwarding (a far-away region on loopback),
- send each response body at ``bandwidth`` bytes per second (a link slower than loopback;
  each body is paced on its own, as over independent TCP connections to S3),
- answer a chosen fraction of requests with ``503 SlowDown`` (or ``500 InternalError``,
  ``fail_status``) without forwarding them,
- forward a chosen fraction but drop the connection half-way through the response body,
- read a chosen fraction and close the connection without any answer (``reset_fraction``),
- forward a chosen fraction and close the connection instead of answering (``lose_fraction``:
  the request took effect, its answer is lost),
- stop injecting after ``max_faults`` faults,
- restrict those faults to some request kinds (``fault_kinds={"PUT"}``).

:func:`silent_endpoint` (a port that accepts connections and never answers) and
:func:`closed_port_url` (a port nobody listens on) stand for the two broken endpoints.

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
import socket
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "FAULT_CODES",
    "PACE_PIECE",
    "RecordedRequest",
    "S3Proxy",
    "SilentEndpoint",
    "closed_port_url",
    "count_rounds",
    "request_kind",
    "silent_endpoint",
]

#: The S3 error code (and message) the proxy answers for each ``fail_status``.
FAULT_CODES: dict[int, tuple[str, str]] = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
    403: (
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
}

#: Bytes sent per piece of a body paced by ``bandwidth`` (a sleep follows each piece).
PACE_PIECE = 64 * 1024

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
    #: ``"503"``/``"500"`` (answered by the proxy), ``"drop"``, ``"reset"``, ``"lose"``, or None.
    fault: str | None = None
    #: The request's ``Range`` header (None if it had none).
    range: str | None = None
    #: Body bytes sent to the client (0 for HEAD and for faults answered without a body).
    bytes_out: int = 0
    #: ``time.monotonic()`` when the request arrived, and when its answer is sent: when it was
    #: ready to send, plus the body's paced transfer time if a ``bandwidth`` is set.
    start: float = 0.0
    end: float = 0.0


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
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client went away mid-body (killed): S3 stores nothing
            raise ConnectionError(f"request body cut short: {len(body)} of {length} bytes")
        return body

    def _send_body(
        self, payload: bytes, bandwidth: float | None, recorded: RecordedRequest
    ) -> None:
        """Write ``payload`` in pieces, paced to ``bandwidth`` bytes/s if one is set.

        A client that closes the connection before the end (a reader that wanted only the
        headers of a whole-object GET) gets no more; ``recorded`` is then amended to the bytes
        actually written and the time the writing stopped.
        """
        began = time.monotonic()
        view = memoryview(payload)
        written = 0
        try:
            for offset in range(0, len(payload), PACE_PIECE):
                piece = view[offset : offset + PACE_PIECE]
                self.wfile.write(piece)
                written += len(piece)
                if not bandwidth:
                    continue
                self.wfile.flush()
                # sleep until this piece's due time: the pace holds whatever the writes cost
                wait = began + written / bandwidth - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            self.server.proxy._amend(recorded, bytes_out=written, end=time.monotonic())

    def _handle(self) -> None:
        started = time.monotonic()
        proxy = self.server.proxy
        bandwidth = proxy.bandwidth  # read once: a change applies to the next response
        try:
            body = self._body()
        except (ConnectionError, ValueError):  # cut short: forward nothing, as S3 would
            self.close_connection = True
            return
        split = urlsplit(self.path)
        kind = request_kind(self.command, split.path, split.query)
        rng = self.headers.get("Range")

        def record(status: int, fault: str | None, sent: int = 0) -> RecordedRequest:
            transfer = sent / bandwidth if bandwidth else 0.0
            recorded = RecordedRequest(
                kind,
                self.command,
                split.path,
                split.query,
                status,
                fault,
                rng,
                sent,
                started,
                time.monotonic() + transfer,
            )
            proxy._record(recorded)
            return recorded

        fault = proxy._draw_fault(kind)
        if proxy.latency:
            time.sleep(proxy.latency)
        if fault == "reset":
            record(0, "reset")
            self.close_connection = True  # no status line, no headers: the socket closes
            return
        if fault == "fail":
            status = proxy.fail_status
            code, message = FAULT_CODES.get(status, (str(status), "Injected fault."))
            payload = (
                f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            recorded = record(status, str(status), 0 if self.command == "HEAD" else len(payload))
            self.end_headers()
            if self.command != "HEAD":
                self._send_body(payload, bandwidth, recorded)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        status, reason, out_headers, payload = proxy._forward(
            self.command, self.path, body, headers
        )
        if fault == "lose":
            record(status, "lose")
            self.close_connection = True  # forwarded; the answer never comes
            return
        dropped = fault == "drop" and self.command != "HEAD" and len(payload) > 1
        self.send_response(status, reason)
        for name, value in out_headers:
            if name.lower() not in _HOP_HEADERS and name.lower() != "content-length":
                self.send_header(name, value)
        length = out_headers_length(out_headers, payload, self.command)
        self.send_header("Content-Length", str(length))
        if dropped:
            self.send_header("Connection", "close")
            recorded = record(status, "drop", len(payload) // 2)
            self.end_headers()
            self._send_body(payload[: len(payload) // 2], bandwidth, recorded)
            with suppress(OSError):
                self.wfile.flush()
            self.close_connection = True
            return
        # recorded before the answer goes out (its ``end`` counts the paced transfer ahead): a
        # client that reads it and looks at the proxy sees this request, and its next request
        # starts after this ``end``
        recorded = record(status, None, 0 if self.command == "HEAD" else len(payload))
        self.end_headers()
        if self.command != "HEAD":
            self._send_body(payload, bandwidth, recorded)

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
    bandwidth
        Bytes per second at which each response body is sent (in pieces of
        :data:`PACE_PIECE` bytes with sleeps between them); ``None``: loopback speed. Each
        body gets the full rate, however many are sent at once (like independent TCP
        connections to S3); request bodies (uploads) are not paced.
    fail_fraction
        Fraction of requests answered ``fail_status`` (not forwarded).
    drop_fraction
        Fraction of requests forwarded whose response is cut off half-way.
    reset_fraction
        Fraction of requests read and answered by closing the connection (not forwarded).
    lose_fraction
        Fraction of requests forwarded and then answered by closing the connection: the
        request took effect upstream, the client never learns it.
    max_faults
        Inject at most this many faults, then forward everything; ``None``: no limit.
    fail_status
        ``503`` (``SlowDown``, the default) or ``500`` (``InternalError``); see
        :data:`FAULT_CODES`. Other statuses are sent with their number as the error code.
    fault_kinds
        Request kinds (``"PUT"``, ``"GET"``, ``"LIST"``, ...) the faults apply to; ``None``
        means every request.
    seed
        Seed of the fault draw, so a run is reproducible.
    """

    def __init__(
        self,
        upstream: str,
        *,
        latency: float = 0.0,
        bandwidth: float | None = None,
        fail_fraction: float = 0.0,
        drop_fraction: float = 0.0,
        reset_fraction: float = 0.0,
        lose_fraction: float = 0.0,
        fail_status: int = 503,
        fault_kinds: Collection[str] | None = None,
        max_faults: int | None = None,
        seed: int = 0,
    ) -> None:
        split = urlsplit(upstream)
        self._upstream = (split.hostname or "127.0.0.1", split.port or 80)
        self.latency = latency
        self.bandwidth = _bandwidth(bandwidth)
        self.fail_fraction = fail_fraction
        self.drop_fraction = drop_fraction
        self.reset_fraction = reset_fraction
        self.lose_fraction = lose_fraction
        self.fail_status = fail_status
        self.fault_kinds = _kinds(fault_kinds)
        self.max_faults = max_faults
        self._injected = 0
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

    @property
    def bytes_out(self) -> int:
        """Body bytes sent to clients since the last :meth:`reset`."""
        return sum(r.bytes_out for r in self.requests)

    def rounds(self) -> int:
        """Sequential rounds of requests since the last :meth:`reset`.

        Requests are taken in order of arrival; one that arrives after every request of the
        current round has been answered opens a new round. Requests that overlap in time
        (run concurrently) share a round, so a job that waits for each answer before the
        next request has as many rounds as requests.
        """
        return count_rounds(self.requests)

    def reset(self) -> None:
        """Forget the requests seen so far."""
        with self._lock:
            self._requests.clear()

    @property
    def faults(self) -> Counter[str]:
        """Faults injected since the last :meth:`reset` by kind.

        ``"503"``/``"500"``/... (answered by the proxy), ``"drop"``, ``"reset"``, ``"lose"``.
        """
        return Counter(r.fault for r in self.requests if r.fault)

    def set_faults(
        self,
        *,
        fail_fraction: float = 0.0,
        drop_fraction: float = 0.0,
        reset_fraction: float = 0.0,
        lose_fraction: float = 0.0,
        fail_status: int = 503,
        fault_kinds: Collection[str] | None = None,
        max_faults: int | None = None,
        seed: int = 0,
    ) -> None:
        """Change the faults (see the class's parameters) and reseed the draw."""
        with self._lock:
            self.fail_fraction = fail_fraction
            self.drop_fraction = drop_fraction
            self.reset_fraction = reset_fraction
            self.lose_fraction = lose_fraction
            self.fail_status = fail_status
            self.fault_kinds = _kinds(fault_kinds)
            self.max_faults = max_faults
            self._injected = 0
            self._random = random.Random(seed)

    # -- internals ---------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _amend(self, request: RecordedRequest, **changes: Any) -> None:
        """Replace the recorded ``request`` (if still recorded) by a copy with ``changes``."""
        with self._lock:
            for index, seen in enumerate(self._requests):
                if seen is request:
                    self._requests[index] = replace(request, **changes)
                    return

    def _draw_fault(self, kind: str) -> str | None:
        with self._lock:
            rates = (
                ("fail", self.fail_fraction),
                ("drop", self.drop_fraction),
                ("reset", self.reset_fraction),
                ("lose", self.lose_fraction),
            )
            if not any(rate for _, rate in rates):
                return None
            if self.fault_kinds is not None and kind not in self.fault_kinds:
                return None
            if self.max_faults is not None and self._injected >= self.max_faults:
                return None
            draw = self._random.random()
            bound = 0.0
            for fault, rate in rates:
                bound += rate
                if draw < bound:
                    self._injected += 1
                    return fault
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


def count_rounds(requests: Collection[RecordedRequest]) -> int:
    """Sequential rounds among ``requests`` (see :meth:`S3Proxy.rounds`)."""
    rounds = 0
    round_end = float("-inf")
    for r in sorted(requests, key=lambda r: r.start):
        if r.start > round_end:
            rounds += 1
            round_end = r.end
        else:
            round_end = max(round_end, r.end)
    return rounds


def _bandwidth(bandwidth: float | None) -> float | None:
    """``bandwidth`` checked: a positive number of bytes/s, or None (0 also means None)."""
    if bandwidth is None or bandwidth == 0:
        return None
    if not bandwidth > 0:
        raise ValueError(f"bandwidth={bandwidth!r}: must be a positive number of bytes/s or None")
    return float(bandwidth)


def _kinds(kinds: Collection[str] | None) -> frozenset[str] | None:
    if kinds is None:
        return None
    if isinstance(kinds, str):
        kinds = [kinds]
    known = {"HEAD", "GET", "LIST", "PUT", "POST", "DELETE"}
    upper = frozenset(k.upper() for k in kinds)
    if not upper <= known:
        raise ValueError(f"fault_kinds={sorted(kinds)!r}: each must be one of {sorted(known)}")
    return upper


# -- broken endpoints ------------------------------------------------------------------------


@dataclass
class SilentEndpoint:
    """A port on 127.0.0.1 that accepts TCP connections and never sends a byte.

    Attributes
    ----------
    endpoint_url
        ``http://127.0.0.1:PORT``.
    connections
        Connections accepted so far (each is one attempt of a client).
    """

    endpoint_url: str
    connections: int = 0
    _sockets: list[socket.socket] = field(default_factory=list, repr=False)


@contextmanager
def silent_endpoint() -> Iterator[SilentEndpoint]:
    """Listen on a free port of 127.0.0.1, accept connections and never answer them.

    Stands for an endpoint behind a firewall that swallows requests, or a hung server: a
    client's connect succeeds and its read times out. The sockets close when the block ends.
    """
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    port = listener.getsockname()[1]
    endpoint = SilentEndpoint(f"http://127.0.0.1:{port}")
    lock = threading.Lock()

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with lock:
                endpoint.connections += 1
                endpoint._sockets.append(conn)  # kept open, never read, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        listener.close()
        thread.join(timeout=5)
        with lock:
            for conn in endpoint._sockets:
                conn.close()


def closed_port_url() -> str:
    """``http://127.0.0.1:PORT`` of a port nobody listens on (connections are refused).

    The port is taken from the system and released at once; another process could grab it
    before it is used, which on loopback in a test run is unlikely.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- command line: a proxy in its own process ------------------------------------------------


def _serve_commands(proxy: S3Proxy, commands: Any, replies: Any) -> None:
    """Answer one command per line until ``stop`` or end of input.

    ``reset`` forgets the requests seen (``ok``); ``counts`` prints the counts by kind and
    ``total`` as one JSON line; ``stats`` prints ``total``, ``rounds`` and ``bytes_out``
    as one JSON line; ``requests`` prints every recorded request as a JSON list of objects
    (the fields of :class:`RecordedRequest`); ``latency S`` sets the injected latency and
    ``bandwidth B`` the bandwidth in bytes/s (``none`` or ``0``: no limit), each answering ``ok``.
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
        elif command == "stats":
            requests = proxy.requests
            reply = json.dumps(
                {
                    "total": len(requests),
                    "rounds": count_rounds(requests),
                    "bytes_out": sum(r.bytes_out for r in requests),
                }
            )
        elif command == "requests":
            reply = json.dumps([asdict(r) for r in proxy.requests])
        elif command == "latency":
            proxy.latency = float(argument)
            reply = "ok"
        elif command == "bandwidth":
            try:
                value = None if argument.strip().lower() in ("", "none") else float(argument)
                proxy.bandwidth = _bandwidth(value)
                reply = "ok"
            except ValueError as error:
                reply = json.dumps({"error": str(error)})
        else:
            reply = json.dumps({"error": f"unknown command {command!r}"})
        replies.write(reply + "\n")
        replies.flush()


def main(argv: list[str] | None = None) -> None:
    """Run a proxy in this process: ``python -m nwbstore.testing.s3proxy --upstream URL``.

    The proxy listens on a free port of 127.0.0.1 and writes that port to ``--port-file``
    (written whole, then renamed, so a reader never sees half a number). It then reads
    commands on standard input, one a line, and answers each on standard output: ``reset``,
    ``counts`` (a JSON object of counts by kind plus ``total``), ``stats`` (``total``,
    ``rounds``, ``bytes_out``), ``requests`` (each request), ``latency S``, ``bandwidth B``
    (bytes/s) and ``stop`` (or end of input), so a benchmark can count the requests of a job
    run in another process. ``--bandwidth`` paces each response body from the start.
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
    parser.add_argument(
        "--bandwidth",
        type=float,
        default=None,
        help="bytes per second of each response body (default: no limit)",
    )
    parser.add_argument("--port-file", required=True, help="where to write the port")
    parser.add_argument("--fail-fraction", type=float, default=0.0)
    parser.add_argument("--drop-fraction", type=float, default=0.0)
    parser.add_argument("--reset-fraction", type=float, default=0.0)
    parser.add_argument("--lose-fraction", type=float, default=0.0)
    parser.add_argument("--fail-status", type=int, default=503, choices=sorted(FAULT_CODES))
    parser.add_argument(
        "--fault-kinds", default=None, help="comma-separated kinds the faults apply to (PUT,GET)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    proxy = S3Proxy(
        args.upstream,
        latency=args.latency,
        bandwidth=args.bandwidth,
        fail_fraction=args.fail_fraction,
        drop_fraction=args.drop_fraction,
        reset_fraction=args.reset_fraction,
        lose_fraction=args.lose_fraction,
        fail_status=args.fail_status,
        fault_kinds=args.fault_kinds.split(",") if args.fault_kinds else None,
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
