"""One quick probe of a remote (fsspec) location, shared by the Zarr and HDF5 backends.

Before a remote store is opened (or its format sniffed), one request is made through a
filesystem built from the caller's ``storage_options`` with retries turned down and a short
connect timeout. Failures become nwbstore's errors right away: a missing fsspec
implementation is a :class:`~nwbstore.errors.MissingDependencyError` naming the extra to
install; an unreachable endpoint an :class:`~nwbstore.errors.EndpointUnreachableError`,
a 403 or missing credentials an :class:`~nwbstore.errors.AccessDeniedError`, a missing
bucket a :class:`~nwbstore.errors.BucketNotFoundError`, each naming the URL and what to do,
never a botocore traceback after seconds or minutes of retries. Credentials never appear
in these messages.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from nwbstore.backends._s3_retries import RetryPolicy, retry_sync
from nwbstore.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    EndpointUnreachableError,
    MissingDependencyError,
    NwbStoreError,
    ReadOnlyError,
    StoreNotFoundError,
)

__all__ = [
    "PROBE_CONNECT_TIMEOUT",
    "PROBE_READ_TIMEOUT",
    "access_denied",
    "denied_write",
    "endpoint_of",
    "list_root",
    "probe_call",
    "probe_filesystem",
    "probe_info",
    "probe_url",
    "stat_path",
    "translate_s3_error",
    "unreachable",
]

#: Seconds to wait for a connection when probing an S3 endpoint.
PROBE_CONNECT_TIMEOUT = 3
#: Seconds to wait for the probe's answer: an endpoint that accepts connections and never
#: answers is reported as unreachable after this long, not retried.
PROBE_READ_TIMEOUT = 5
#: Protocols served by s3fs.
S3_PROTOCOLS = ("s3", "s3a")


def endpoint_of(storage_options: Mapping[str, Any]) -> str:
    """The S3 endpoint the options (or the environment) point to, for error messages."""
    client = storage_options.get("client_kwargs") or {}
    return str(
        storage_options.get("endpoint_url")
        or client.get("endpoint_url")
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or "the default AWS endpoint"
    )


def denied_write(url: str, err: BaseException) -> ReadOnlyError:
    """The error for a write to ``url`` that the object store refused (S3 AccessDenied).

    Parameters
    ----------
    url
        The store (or object) the write was for; named in the message.
    err
        What the filesystem raised (s3fs raises ``PermissionError`` for AccessDenied).
    """
    reason = " ".join(str(err).split()) or type(err).__name__
    return ReadOnlyError(
        f"no permission to write to {url} ({reason}): the credentials in use may only read. "
        "Pass credentials that may write (key/secret in storage_options, or --storage-options "
        "on the command line), and make sure the bucket policy allows s3:PutObject and "
        "s3:DeleteObject on this prefix"
    )


def probe_filesystem(protocol: str, storage_options: Mapping[str, Any]) -> Any:
    """A filesystem for the probe: the caller's options, one attempt, short timeouts.

    Raises
    ------
    MissingDependencyError
        If fsspec has no implementation of ``protocol`` installed (``s3fs`` for ``s3://``).
    """
    import fsspec

    opts = dict(storage_options)
    opts["skip_instance_cache"] = True
    if protocol in S3_PROTOCOLS:
        config = dict(opts.get("config_kwargs") or {})
        config.setdefault("connect_timeout", PROBE_CONNECT_TIMEOUT)
        config.setdefault("read_timeout", PROBE_READ_TIMEOUT)
        # one botocore attempt: transient faults are retried by probe_call (nwbstore's policy)
        config["retries"] = {"total_max_attempts": 1, "mode": "standard"}
        opts["config_kwargs"] = config
    try:
        fs = fsspec.filesystem(protocol, **opts)
    except ImportError as err:
        package = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}.get(protocol)
        extra = "s3" if package == "s3fs" else "all"
        raise MissingDependencyError(
            f"{protocol}:// URLs need {package or 'an fsspec implementation'}: "
            f"pip install 'nwbstore[{extra}]' ({err})"
        ) from err
    if hasattr(fs, "retries"):
        fs.retries = 1  # s3fs's own retry loop on top of botocore's
    return fs


def _safe_endpoint(options: Mapping[str, Any]) -> str:
    """:func:`endpoint_of` without any ``user:password@`` part (never show credentials)."""
    endpoint = endpoint_of(options)
    scheme, sep, rest = endpoint.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def _is_network_error(err: BaseException) -> bool:
    """True for connection refused, DNS failure and timeouts, as botocore/aiohttp raise them."""
    if isinstance(err, (ConnectionError, TimeoutError)):
        return True
    try:
        from botocore import exceptions as bce
    except ImportError:  # pragma: no cover - s3fs always brings botocore
        bce = None
    if bce is not None and isinstance(
        err, (bce.ConnectionError, bce.HTTPClientError, bce.ConnectionClosedError)
    ):
        return True
    try:
        import aiohttp
    except ImportError:  # pragma: no cover
        return False
    return isinstance(err, (aiohttp.ClientConnectionError, aiohttp.ServerTimeoutError))


def _is_missing_credentials(err: BaseException) -> bool:
    try:
        from botocore.exceptions import NoCredentialsError, PartialCredentialsError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(err, (NoCredentialsError, PartialCredentialsError))


def _one_line(err: BaseException) -> str:
    """``err`` on one line, without any ``user:password@`` of a URL in it."""
    text = " ".join(str(err).split()) or type(err).__name__
    return _USERINFO.sub(r"\1", text)


_USERINFO = re.compile(r"(\w+://)[^/@\s\"']+@")


def unreachable(
    url: str, protocol: str, options: Mapping[str, Any], err: BaseException
) -> Exception:
    """The error for a request to ``url`` that never reached the endpoint."""
    if protocol in S3_PROTOCOLS:
        where = f"the S3 endpoint {_safe_endpoint(options)}"
        hint = (
            "check the network, and endpoint_url in storage_options (--endpoint-url) or "
            "AWS_ENDPOINT_URL"
        )
    else:
        where, hint = f"the {protocol.upper()} server", "check the network and the URL"
    return EndpointUnreachableError(
        f"cannot reach {where} for {url} ({type(err).__name__}: {_one_line(err)}): {hint}"
    )


def access_denied(url: str, err: BaseException) -> AccessDeniedError:
    """The error for a read of ``url`` that the object store refused (403, no credentials)."""
    if _is_missing_credentials(err):
        return AccessDeniedError(
            f"no credentials to access {url} ({_one_line(err)}): pass key/secret in "
            "storage_options (--storage-options), set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or anon=True for a public bucket"
        )
    return AccessDeniedError(
        f"access to {url} was denied ({_one_line(err)}): the credentials are invalid or may "
        "not read this bucket; check key/secret in storage_options (--storage-options) or the "
        "AWS environment variables, and that the bucket policy allows s3:GetObject and "
        "s3:ListBucket"
    )


def translate_s3_error(
    url: str, protocol: str, options: Mapping[str, Any], err: BaseException
) -> Exception | None:
    """nwbstore's error for what an S3 request raised, or None if it is none of the three.

    The three failures a user fixes differently get three classes:
    :class:`~nwbstore.errors.EndpointUnreachableError` (network),
    :class:`~nwbstore.errors.AccessDeniedError` (403, invalid or no credentials) and
    :class:`~nwbstore.errors.BucketNotFoundError` (raised by the bucket check).
    """
    if isinstance(err, NwbStoreError):
        return err
    if isinstance(err, PermissionError) or _is_missing_credentials(err):
        return access_denied(url, err)
    if _is_network_error(err):
        return unreachable(url, protocol, options, err)
    return None


def probe_call[T](
    url: str, protocol: str, options: Mapping[str, Any], what: str, op: Callable[[], T]
) -> T:
    """``op()`` (one probe request) with transient faults (503, 500, resets) retried.

    A read timeout counts as an unreachable endpoint here: the probe is the first request,
    and an endpoint that never answers it fails in seconds instead of minutes of retries.
    """
    return retry_sync(
        op,
        what=f"{what} {url}",
        policy=RetryPolicy.from_env(timeouts_unreachable=True),
        on_unreachable=lambda err: unreachable(url, protocol, options, err),
    )


@contextmanager
def _probe_errors(url: str, protocol: str, options: Mapping[str, Any]) -> Iterator[None]:
    """Translate what a probe request raises; ``FileNotFoundError`` passes through."""
    try:
        yield
    except FileNotFoundError as err:
        cause = err.__cause__ or err.__context__  # fsspec's HTTP filesystem hides the reason
        if cause is not None and _is_network_error(cause):
            raise unreachable(url, protocol, options, cause) from None
        raise
    except Exception as err:  # botocore/aiohttp connection errors have no common base
        translated = translate_s3_error(url, protocol, options, err)
        if translated is not None:
            raise translated from None
        raise StoreNotFoundError(
            f"cannot open {url} at {_safe_endpoint(options)}: {type(err).__name__}: "
            f"{_one_line(err)}. Check the URL, and endpoint_url in storage_options or "
            "AWS_ENDPOINT_URL."
        ) from None


def _check_bucket(fs: Any, url: str, path: str, protocol: str, options: Mapping[str, Any]) -> None:
    """Raise ``BucketNotFoundError`` if ``path``'s S3 bucket does not exist."""
    if protocol not in S3_PROTOCOLS:
        return
    bucket = path.split("/", 1)[0]
    try:
        probe_call(url, protocol, options, "HEAD", lambda: fs.call_s3("head_bucket", Bucket=bucket))
    except PermissionError:
        return  # 403, not 404: the bucket exists, these credentials may not ask about it
    except FileNotFoundError:
        raise BucketNotFoundError(
            f"bucket {bucket!r} of {url} does not exist at {_safe_endpoint(options)}: check "
            "the bucket name, or create the bucket first (nwbstore does not create buckets)"
        ) from None
    except Exception as err:
        translated = translate_s3_error(url, protocol, options, err)
        if translated is not None:
            raise translated from None
        raise


def list_root(fs: Any, url: str, path: str, protocol: str, options: Mapping[str, Any]) -> set[str]:
    """Names directly under ``path`` (one request); empty if nothing is there.

    Raises
    ------
    BucketNotFoundError
        For a missing bucket.
    EndpointUnreachableError
        If the endpoint cannot be reached (connection refused, DNS, timeout).
    AccessDeniedError
        If access is denied, or the credentials are invalid or missing.
    """
    try:
        with _probe_errors(url, protocol, options):
            entries = probe_call(
                url, protocol, options, "LIST", lambda: fs.ls(path, detail=False, refresh=True)
            )
        return {posixpath.basename(str(e).rstrip("/")) for e in entries}
    except FileNotFoundError:
        pass
    _check_bucket(fs, url, path, protocol, options)
    return set()


def stat_path(
    fs: Any, url: str, path: str, protocol: str, options: Mapping[str, Any]
) -> dict[str, Any] | None:
    """``fs.info(path)`` (one request, no listing of a file's content); ``None`` if missing.

    Raises
    ------
    BucketNotFoundError
        For a missing bucket.
    EndpointUnreachableError
        If the endpoint cannot be reached (connection refused, DNS, timeout).
    AccessDeniedError
        If access is denied, or the credentials are invalid or missing.
    """
    try:
        with _probe_errors(url, protocol, options):
            info: dict[str, Any] = probe_call(url, protocol, options, "HEAD", lambda: fs.info(path))
        return info
    except FileNotFoundError:
        pass
    _check_bucket(fs, url, path, protocol, options)
    return None


def probe_url(url: str, storage_options: Mapping[str, Any] | None) -> bool:
    """Probe a remote ``url`` with one quick request: True if something is there.

    See :func:`probe_info` for the errors.
    """
    return probe_info(url, storage_options) is not None


def probe_info(url: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Probe a remote ``url`` with one quick request: its ``fs.info`` (size, ETag, ...), or
    None if nothing is there.

    Chained URLs (``simplecache::s3://...``) are not probed and give ``{}``: the caller's own
    open reports on them.

    Raises
    ------
    MissingDependencyError
        If the fsspec implementation of the URL's protocol is not installed.
    BucketNotFoundError
        For a missing bucket.
    EndpointUnreachableError
        If the endpoint cannot be reached (connection refused, DNS, timeout).
    AccessDeniedError
        If access is denied, or the credentials are invalid or missing.
    """
    if "::" in url:
        return {}
    protocol = url.partition("://")[0].lower()
    options = dict(storage_options or {})
    fs = probe_filesystem(protocol, options)
    path = type(fs)._strip_protocol(url)
    return stat_path(fs, url, path, protocol, options)
