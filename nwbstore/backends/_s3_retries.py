"""Retries of object-storage requests: what is transient, how long to keep trying, s3fs options.

nwbstore retries S3 requests itself, in one place, instead of stacking botocore's retry loop
(up to 5 attempts) under s3fs's (5 more, sleeping up to 15 s): a store opened by nwbstore
gets botocore ``total_max_attempts=1`` and s3fs ``retries=1``, and every request of the zarr
store goes through :func:`retry_async` under a :class:`RetryPolicy`:

- **transient** faults (503 ``SlowDown``, 500 ``InternalError``, ``RequestTimeout``, a
  connection reset or closed without an answer, a read timeout, a body cut off half-way) are
  retried with full-jitter exponential backoff, at most :data:`MAX_ATTEMPTS` attempts and
  :data:`MAX_SECONDS` seconds in all, then :class:`~nwbstore.errors.RetriesExhaustedError`;
- an **unreachable** endpoint (connection refused, DNS failure, connect timeout) fails at once
  with :class:`~nwbstore.errors.EndpointUnreachableError`;
- **permanent** errors (403 ``AccessDenied``, ``InvalidAccessKeyId``,
  ``SignatureDoesNotMatch``, ``NoSuchBucket``, 404, anything unrecognised) pass through at
  once, unchanged, for the caller to translate.

A conditional create (``If-None-Match: *``, :meth:`RetryingFsspecStore.create_object`) that
is answered 412 after an earlier attempt of the same request got no answer may have created
the object itself: that case raises :class:`~nwbstore.errors.CreateOutcomeUnknownError`, never
a silent success or a plain "exists".
"""

from __future__ import annotations

import asyncio
import enum
import functools
import http.client
import os
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zarr.storage import FsspecStore

from nwbstore.errors import CreateOutcomeUnknownError, RetriesExhaustedError, StoreExistsError

if TYPE_CHECKING:
    from zarr.abc.store import ByteRequest
    from zarr.core.buffer import Buffer, BufferPrototype

__all__ = [
    "BASE_DELAY",
    "CONNECT_TIMEOUT",
    "MAX_ATTEMPTS",
    "MAX_DELAY",
    "MAX_SECONDS",
    "READ_TIMEOUT",
    "Fault",
    "RetryPolicy",
    "RetryingFsspecStore",
    "classify",
    "retry_async",
    "retry_sync",
    "s3_write_options",
    "shared_session_options",
]

#: Attempts of one request, the first included.
MAX_ATTEMPTS = 10
#: Seconds one request may take in all, its attempts and the waits between them included.
MAX_SECONDS = 60.0
#: First backoff ceiling in seconds; it doubles per attempt (full jitter: a uniform draw below it).
BASE_DELAY = 0.1
#: Largest backoff ceiling in seconds.
MAX_DELAY = 5.0
#: Seconds to wait for a TCP connection to the endpoint.
CONNECT_TIMEOUT = 5
#: Seconds to wait for (each read of) an answer.
READ_TIMEOUT = 30
#: Connections in s3fs's pool when the caller names no concurrency (zarr's default is 10).
DEFAULT_POOL = 10

#: Environment variables that change the policy (a positive integer, a positive number).
ENV_MAX_ATTEMPTS = "NWBSTORE_S3_MAX_ATTEMPTS"
ENV_MAX_SECONDS = "NWBSTORE_S3_RETRY_SECONDS"

# S3 error codes (and bare HTTP statuses, as a HEAD answer has no body) worth another try.
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "IncompleteBody",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "500",
        "502",
        "503",
        "504",
    }
)
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class Fault(enum.Enum):
    """What kind of failure an exception is, for the retry loop."""

    TRANSIENT = "transient"
    UNREACHABLE = "unreachable"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a failing request is tried again.

    Parameters
    ----------
    max_attempts
        Attempts of one request, the first included (1 means no retry).
    max_seconds
        Time budget of one request, its attempts and waits included; no wait starts that
        would end after it.
    base_delay, max_delay
        Full-jitter exponential backoff: before attempt ``n + 1`` the wait is drawn uniformly
        from ``[0, min(max_delay, base_delay * 2**(n - 1))]``.
    timeouts_unreachable
        Treat a read timeout as an unreachable endpoint (no retry). The one-request probe
        that opens a store uses this: an endpoint that never answers fails in seconds.
    """

    max_attempts: int = MAX_ATTEMPTS
    max_seconds: float = MAX_SECONDS
    base_delay: float = BASE_DELAY
    max_delay: float = MAX_DELAY
    timeouts_unreachable: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"max_attempts={self.max_attempts!r} must be an integer >= 1")
        for name in ("max_seconds", "base_delay", "max_delay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name}={value!r} must be a number >= 0")

    @classmethod
    def from_env(cls, **overrides: Any) -> RetryPolicy:
        """The default policy, with :data:`ENV_MAX_ATTEMPTS` / :data:`ENV_MAX_SECONDS` applied."""
        values: dict[str, Any] = {}
        attempts = os.environ.get(ENV_MAX_ATTEMPTS)
        seconds = os.environ.get(ENV_MAX_SECONDS)
        try:
            if attempts:
                values["max_attempts"] = int(attempts)
            if seconds:
                values["max_seconds"] = float(seconds)
            return cls(**{**values, **overrides})
        except ValueError as err:
            raise ValueError(
                f"{ENV_MAX_ATTEMPTS}={attempts!r} / {ENV_MAX_SECONDS}={seconds!r}: {err} "
                "(a positive integer and a positive number of seconds)"
            ) from None

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return (rng or random).uniform(0.0, ceiling)


def _chain(err: BaseException) -> list[BaseException]:
    """``err`` and its causes/contexts, outermost first, each once."""
    seen: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and all(current is not s for s in seen) and len(seen) < 16:
        seen.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__suppress_context__:  # ``raise ... from None``
            break
        else:
            current = current.__context__
    return seen


def _client_error_fault(err: Any) -> Fault | None:
    response = getattr(err, "response", None)
    if not isinstance(response, Mapping):
        return None
    code = str((response.get("Error") or {}).get("Code") or "")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    if code in _TRANSIENT_CODES or status in _TRANSIENT_STATUS:
        return Fault.TRANSIENT
    return Fault.PERMANENT


def _one_fault(err: BaseException, timeouts_unreachable: bool) -> Fault | None:
    """The fault ``err`` itself says it is, or None if it does not tell (look at its cause)."""
    from botocore import exceptions as bce

    from nwbstore.errors import NwbStoreError

    if isinstance(err, NwbStoreError):
        return Fault.PERMANENT
    if isinstance(err, bce.ClientError):
        return _client_error_fault(err)
    if isinstance(err, bce.ConnectTimeoutError):
        return Fault.UNREACHABLE
    if isinstance(err, bce.EndpointConnectionError):
        # aiobotocore wraps both "could not connect" and "connection reset" in this class
        inner = getattr(err, "kwargs", {}).get("error")
        if inner is None or _never_connected(inner):
            return Fault.UNREACHABLE
        return Fault.TRANSIENT
    if isinstance(err, bce.ReadTimeoutError):
        return Fault.UNREACHABLE if timeouts_unreachable else Fault.TRANSIENT
    if isinstance(err, bce.HTTPClientError) and isinstance(
        getattr(err, "kwargs", {}).get("error") or err.__cause__, (ValueError, TypeError)
    ):
        # the HTTP client refused to send it (e.g. credentials in the endpoint URL together
        # with signed headers): the same request fails the same way every time
        return Fault.PERMANENT
    if isinstance(err, (bce.HTTPClientError, bce.ResponseStreamingError, bce.IncompleteReadError)):
        return Fault.TRANSIENT  # ConnectionClosedError, body cut off
    from botocore.parsers import ResponseParserError

    if isinstance(err, ResponseParserError):
        return Fault.TRANSIENT  # throttling answers can carry invalid XML (s3fs#484)
    if _never_connected(err):
        return Fault.UNREACHABLE
    if isinstance(err, (ConnectionError, http.client.IncompleteRead)):
        return Fault.TRANSIENT  # reset, aborted, broken pipe, short body
    if isinstance(err, (TimeoutError, asyncio.TimeoutError, socket.timeout)):
        return Fault.UNREACHABLE if timeouts_unreachable else Fault.TRANSIENT
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - s3fs always brings aiohttp
        return None
    if isinstance(err, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        return Fault.TRANSIENT
    if isinstance(err, aiohttp.ClientConnectionError):
        return Fault.TRANSIENT
    if isinstance(err, (PermissionError, FileNotFoundError, FileExistsError)):
        return Fault.PERMANENT
    return None


def _never_connected(err: BaseException) -> bool:
    """True for errors that mean no connection was made: refused, DNS, connect failure."""
    if isinstance(err, (ConnectionRefusedError, socket.gaierror)):
        return True
    try:
        import aiohttp
    except ImportError:  # pragma: no cover
        return False
    return isinstance(err, aiohttp.ClientConnectorError)


def classify(err: BaseException, *, timeouts_unreachable: bool = False) -> Fault:
    """Whether ``err`` (as s3fs, botocore or aiohttp raised it) is worth another attempt.

    s3fs turns botocore's ``ClientError`` into ``OSError``/``PermissionError``/... with the
    original as ``__cause__``: the chain is searched, outermost first, for an exception that
    tells. An answer of the server (a ``ClientError`` anywhere in the chain) decides first:
    s3fs maps the code ``RequestTimeout`` to ``TimeoutError``, which is not a network
    timeout. Nothing recognised is :attr:`Fault.PERMANENT` (never retried blindly).
    """
    from botocore.exceptions import ClientError

    from nwbstore.errors import NwbStoreError

    chain = _chain(err)
    if isinstance(err, NwbStoreError):
        return Fault.PERMANENT  # already translated by nwbstore
    for link in chain:
        if isinstance(link, ClientError):
            return _client_error_fault(link) or Fault.PERMANENT
    for link in chain:
        fault = _one_fault(link, timeouts_unreachable)
        if fault is not None:
            return fault
    return Fault.PERMANENT


def _precondition_failed(err: BaseException) -> bool:
    """True if ``err`` is (or was caused by) a 412 answer to a conditional request."""
    for link in _chain(err):
        response = getattr(link, "response", None)
        if isinstance(response, Mapping):
            code = str((response.get("Error") or {}).get("Code") or "")
            status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            return code in ("PreconditionFailed", "412") or status == 412
    return False


def _one_line(err: BaseException) -> str:
    from nwbstore.backends._remote import _one_line as safe

    return safe(err)


def _exhausted(what: str, attempts: int, elapsed: float, err: BaseException) -> Exception:
    last = f"{type(err).__name__}: {_one_line(err)}"
    return RetriesExhaustedError(
        f"{what} failed {attempts} time{'s' if attempts != 1 else ''} in {elapsed:.1f} s; "
        f"last error {last.rstrip('.')}. The object store keeps failing (overloaded, "
        "throttling, or a network that drops connections): try again later, lower the "
        "request concurrency (concurrency= / --concurrency), or allow more with the "
        f"environment variables {ENV_MAX_ATTEMPTS} and {ENV_MAX_SECONDS}",
        url=what.rpartition(" ")[2],
        attempts=attempts,
        elapsed=elapsed,
        last_error=last,
    )


class _Attempts:
    """The bookkeeping shared by the sync and async loops."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.start = time.monotonic()
        self.count = 0

    def next_wait(self, err: BaseException) -> float | None:
        """Seconds to wait before the next attempt, or None to give up (``err`` is the last)."""
        if self.count >= self.policy.max_attempts:
            return None
        wait = self.policy.delay(self.count)
        if time.monotonic() - self.start + wait > self.policy.max_seconds:
            return None
        return wait

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


async def retry_async[T](
    op: Callable[[], Awaitable[T]],
    *,
    what: str,
    policy: RetryPolicy,
    on_unreachable: Callable[[BaseException], Exception],
) -> T:
    """Await ``op()`` until it succeeds, retrying transient faults under ``policy``.

    Parameters
    ----------
    op
        Makes one attempt (a fresh awaitable per call).
    what
        ``"GET s3://bucket/key"``: names the request in the error when attempts run out.
    policy
        Limits of the retries.
    on_unreachable
        Builds the error raised (at once) when the endpoint cannot be reached.

    Raises
    ------
    RetriesExhaustedError
        Transient faults until the attempts or the time budget ran out.
    EndpointUnreachableError
        (Whatever ``on_unreachable`` builds) on connection refused, DNS failure, connect
        timeout.
    Exception
        A permanent error, unchanged.
    """
    attempts = _Attempts(policy)
    while True:
        attempts.count += 1
        try:
            return await op()
        except Exception as err:
            fault = classify(err, timeouts_unreachable=policy.timeouts_unreachable)
            if fault is Fault.PERMANENT:
                raise
            if fault is Fault.UNREACHABLE:
                raise on_unreachable(err) from None
            wait = attempts.next_wait(err)
            if wait is None:
                raise _exhausted(what, attempts.count, attempts.elapsed, err) from None
        await asyncio.sleep(wait)


def retry_sync[T](
    op: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy,
    on_unreachable: Callable[[BaseException], Exception],
) -> T:
    """:func:`retry_async` for a blocking ``op`` (the probe that opens a remote store)."""
    attempts = _Attempts(policy)
    while True:
        attempts.count += 1
        try:
            return op()
        except Exception as err:
            fault = classify(err, timeouts_unreachable=policy.timeouts_unreachable)
            if fault is Fault.PERMANENT:
                raise
            if fault is Fault.UNREACHABLE:
                raise on_unreachable(err) from None
            wait = attempts.next_wait(err)
            if wait is None:
                raise _exhausted(what, attempts.count, attempts.elapsed, err) from None
        time.sleep(wait)


def s3_pool_options(options: Mapping[str, Any], concurrency: int | None) -> dict[str, Any]:
    """s3fs options whose connection pool holds ``concurrency`` requests (default 10).

    The one place nwbstore sizes botocore's pool; an explicit ``max_pool_connections`` in the
    caller's ``config_kwargs`` is kept. ``options`` is not changed.
    """
    opts = dict(options)
    config = dict(opts.get("config_kwargs") or {})
    config.setdefault("max_pool_connections", concurrency or DEFAULT_POOL)
    opts["config_kwargs"] = config
    return opts


def s3_write_options(options: Mapping[str, Any], concurrency: int | None = None) -> dict[str, Any]:
    """s3fs options for a store nwbstore opens: one botocore attempt, bounded timeouts.

    Parameters
    ----------
    options
        The caller's ``storage_options``. Explicit ``connect_timeout``, ``read_timeout``,
        ``max_pool_connections`` (in ``config_kwargs``) and ``max_concurrency`` are kept;
        botocore's ``retries`` is always replaced (nwbstore retries, see :func:`retry_async`).
    concurrency
        Requests the store may have in flight; the connection pool is at least this large.

    Returns
    -------
    dict
        New options; ``options`` is not changed.
    """
    opts = s3_pool_options(options, concurrency)
    config = dict(opts["config_kwargs"])
    config["retries"] = {"total_max_attempts": 1, "mode": "standard"}
    config.setdefault("connect_timeout", CONNECT_TIMEOUT)
    config.setdefault("read_timeout", READ_TIMEOUT)
    opts["config_kwargs"] = config
    # one GET per whole-key read: s3fs >= 2026.3 otherwise sends HEAD + GET (s3fs#1027)
    opts.setdefault("max_concurrency", 1)
    return opts


_shared_session: Any = None
_shared_session_lock = threading.Lock()


def shared_session_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """s3fs options that use one aiobotocore session for the whole process.

    Every s3fs instance otherwise makes its own session and, with it, loads botocore's S3
    service model again when its client is created (50-100 ms of CPU each). A remote HDF5 open
    makes three instances (the probe, h5py's file, the chunk reader); one session makes the
    second and third clients cheap. Only for instances on fsspec's own event loop (a session
    is not shared across loops). The caller's ``session`` or ``profile`` is kept: nothing is
    shared then. ``options`` is not changed.
    """
    global _shared_session
    opts = dict(options)
    if "session" in opts or "profile" in opts:
        return opts
    with _shared_session_lock:
        if _shared_session is None:
            from aiobotocore.session import AioSession

            _shared_session = AioSession()
        opts["session"] = _shared_session
    return opts


async def _listed(make: Callable[[], AsyncIterator[str]]) -> list[str]:
    return [name async for name in make()]


class RetryingFsspecStore(FsspecStore):
    """An ``FsspecStore`` whose every request is retried under a :class:`RetryPolicy`.

    ``get``, ``get_partial_values``, ``set``, ``delete``, ``delete_dir``, ``exists``,
    ``getsize`` and the listings make one attempt each through the parent class, inside
    :func:`retry_async`. A listing is collected whole before its first name is yielded, so a
    retried listing never yields a name twice. s3fs's own retry loop is turned down to one
    attempt (see :meth:`configure_retries`).
    """

    _retry_policy: RetryPolicy = RetryPolicy()

    def configure_retries(self, policy: RetryPolicy | None = None) -> None:
        """Use ``policy`` (default: :meth:`RetryPolicy.from_env`); s3fs makes one attempt."""
        self._retry_policy = policy or RetryPolicy.from_env()
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        if "s3" in protocols and hasattr(self.fs, "retries"):
            # s3fs's loop would retry (and sleep) inside each attempt; other filesystems
            # (gcsfs, ...) keep their own retries, whose errors this policy does not know
            self.fs.retries = 1

    def with_read_only(self, read_only: bool = False) -> FsspecStore:
        store = super().with_read_only(read_only)
        if isinstance(store, RetryingFsspecStore):
            store._retry_policy = self._retry_policy
        return store

    def _key_url(self, key: str) -> str:
        base = str(self.fs.unstrip_protocol(self.path)).rstrip("/")
        return f"{base}/{key}" if key else base

    def __str__(self) -> str:
        """The store's URL (``s3://bucket/key``), as readers such as hdmf-zarr name a store.

        hdmf-zarr computes the sources of links (``../other.nwb.zarr``) from ``str(store)``.
        """
        return self._key_url("")

    def _unreachable(self, url: str, err: BaseException) -> Exception:
        from nwbstore.backends._remote import unreachable

        protocol = url.partition("://")[0] or "s3"
        where = {"endpoint_url": getattr(self.fs, "endpoint_url", None)}
        client = getattr(self.fs, "client_kwargs", None) or {}
        where["client_kwargs"] = {"endpoint_url": client.get("endpoint_url")}
        return unreachable(url, protocol, where, err)

    async def _retried[T](self, method: str, key: str, op: Callable[[], Awaitable[T]]) -> T:
        url = self._key_url(key)
        return await retry_async(
            op,
            what=f"{method} {url}",
            policy=self._retry_policy,
            on_unreachable=functools.partial(self._unreachable, url),
        )

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        return await self._retried(
            "GET", key, functools.partial(super().get, key, prototype, byte_range)
        )

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Any
    ) -> list[Buffer | None]:
        key_ranges = list(key_ranges)
        first = key_ranges[0][0] if key_ranges else ""
        return await self._retried(
            "GET", first, functools.partial(super().get_partial_values, prototype, key_ranges)
        )

    async def set(self, key: str, value: Buffer, byte_range: tuple[int, int] | None = None) -> None:
        await self._retried("PUT", key, functools.partial(super().set, key, value, byte_range))

    async def delete(self, key: str) -> None:
        await self._retried("DELETE", key, functools.partial(super().delete, key))

    async def delete_dir(self, prefix: str) -> None:
        await self._retried("DELETE", prefix, functools.partial(super().delete_dir, prefix))

    async def clear(self) -> None:
        await self._retried("DELETE", "", super().clear)

    async def exists(self, key: str) -> bool:
        return await self._retried("HEAD", key, functools.partial(super().exists, key))

    async def getsize(self, key: str) -> int:
        return await self._retried("HEAD", key, functools.partial(super().getsize, key))

    async def list(self) -> AsyncIterator[str]:
        names = await self._retried("LIST", "", functools.partial(_listed, super().list))
        for name in names:
            yield name

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        listing = functools.partial(super().list_dir, prefix)
        names = await self._retried("LIST", prefix, functools.partial(_listed, listing))
        for name in names:
            yield name

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        listing = functools.partial(super().list_prefix, prefix)
        names = await self._retried("LIST", prefix, functools.partial(_listed, listing))
        for name in names:
            yield name

    async def create_object(self, key: str, value: Buffer) -> None:
        """PUT ``key`` only if no object is there (``If-None-Match: *``), retried.

        A 412 answer after an attempt whose answer was lost is ambiguous: the lost attempt may
        have created the object. Attempts are seen here, but aiohttp also resends a PUT once,
        unseen, when a kept-alive connection drops; so a 412 on the first attempt is checked
        too: if the object's ETag is the MD5 of ``value`` (what a single-part PUT of these
        bytes stores), the outcome is reported as unknown, not as another writer's object.

        Raises
        ------
        StoreExistsError
            412 on the first attempt and the object holds other bytes: another writer made it.
        CreateOutcomeUnknownError
            412 on a retry after an attempt that got no answer, or 412 on an object holding
            exactly these bytes: this call may have created it, or another writer did.
        """
        self._check_writable()
        path = f"{self.path.rstrip('/')}/{key}" if self.path else key
        data = value.to_bytes()
        url = self._key_url(key)
        tries = 0

        async def attempt() -> None:
            nonlocal tries
            tries += 1
            try:
                await self.fs._pipe_file(path, data, mode="create")
            except Exception as err:
                if not _precondition_failed(err) and not isinstance(err, FileExistsError):
                    raise
                if tries == 1 and not await self._holds(path, data):
                    raise StoreExistsError(
                        f"{url} already exists: a conditional create (If-None-Match: *) was "
                        "refused; another writer created it"
                    ) from None
                raise CreateOutcomeUnknownError(
                    f"{url}: a conditional create was refused (412) on attempt {tries} after "
                    "a request whose answer may have been lost; that request may have created "
                    "the object, or another writer did. Read the object to tell which",
                    url=url,
                    attempts=tries,
                ) from None

        await self._retried("PUT", key, attempt)

    async def _holds(self, path: str, data: bytes) -> bool:
        """True if the object at ``path`` has the ETag a single-part PUT of ``data`` gives."""
        import hashlib

        info = await self.fs._info(path, refresh=True)
        etag = str(info.get("ETag") or "").strip('"')
        return etag == hashlib.md5(data, usedforsecurity=False).hexdigest()
