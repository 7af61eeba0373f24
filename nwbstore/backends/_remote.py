"""One quick probe of a remote (fsspec) location, shared by the Zarr and HDF5 backends.

Before a remote store is opened (or its format sniffed), one request is made through a
filesystem built from the caller's ``storage_options`` with retries turned down and a short
connect timeout. Failures become nwbstore's errors right away: a missing fsspec
implementation is a :class:`~nwbstore.errors.MissingDependencyError` naming the extra to
install, an unreachable endpoint or a missing bucket a
:class:`~nwbstore.errors.StoreNotFoundError` naming it, never a botocore traceback after
seconds or minutes of retries.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from nwbstore.errors import MissingDependencyError, ReadOnlyError, StoreNotFoundError

__all__ = [
    "PROBE_CONNECT_TIMEOUT",
    "denied_write",
    "endpoint_of",
    "list_root",
    "probe_filesystem",
    "probe_url",
    "stat_path",
]

#: Seconds to wait for a connection when probing an S3 endpoint.
PROBE_CONNECT_TIMEOUT = 3
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
        config.setdefault("read_timeout", 20)
        config["retries"] = {"max_attempts": 1, "mode": "standard"}
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


@contextmanager
def _probe_errors(url: str, protocol: str, options: Mapping[str, Any]) -> Iterator[None]:
    """Translate what a probe request raises; ``FileNotFoundError`` passes through."""
    try:
        yield
    except FileNotFoundError:
        raise
    except PermissionError as err:
        raise ReadOnlyError(
            f"access to {url} was denied ({err}); check the credentials in storage_options "
            "(key/secret) or the AWS environment variables"
        ) from err
    except Exception as err:  # botocore/aiohttp connection errors have no common base
        raise StoreNotFoundError(
            f"cannot reach {protocol.upper()} endpoint {endpoint_of(options)} for {url}: "
            f"{type(err).__name__}: {err}. Check endpoint_url in storage_options or "
            "AWS_ENDPOINT_URL."
        ) from err


def _check_bucket(fs: Any, url: str, path: str, protocol: str, options: Mapping[str, Any]) -> None:
    """Raise ``StoreNotFoundError`` if ``path``'s S3 bucket does not exist."""
    if protocol not in S3_PROTOCOLS:
        return
    bucket = path.split("/", 1)[0]
    try:
        fs.call_s3("head_bucket", Bucket=bucket)
    except PermissionError:
        return  # 403, not 404: the bucket exists, these credentials may not ask about it
    except Exception:
        raise StoreNotFoundError(
            f"bucket {bucket!r} of {url} does not exist at {endpoint_of(options)}; "
            "create it first (nwbstore does not create buckets)"
        ) from None


def list_root(fs: Any, url: str, path: str, protocol: str, options: Mapping[str, Any]) -> set[str]:
    """Names directly under ``path`` (one request); empty if nothing is there.

    Raises
    ------
    StoreNotFoundError
        For a missing bucket or an unreachable endpoint.
    ReadOnlyError
        If access is denied.
    """
    try:
        with _probe_errors(url, protocol, options):
            entries = fs.ls(path, detail=False, refresh=True)
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
    StoreNotFoundError
        For a missing bucket or an unreachable endpoint.
    ReadOnlyError
        If access is denied.
    """
    try:
        with _probe_errors(url, protocol, options):
            info: dict[str, Any] = fs.info(path)
        return info
    except FileNotFoundError:
        pass
    _check_bucket(fs, url, path, protocol, options)
    return None


def probe_url(url: str, storage_options: Mapping[str, Any] | None) -> bool:
    """Probe a remote ``url`` with one quick request: True if something is there.

    Chained URLs (``simplecache::s3://...``) are not probed and give True: the caller's own
    open reports on them.

    Raises
    ------
    MissingDependencyError
        If the fsspec implementation of the URL's protocol is not installed.
    StoreNotFoundError
        For a missing bucket or an unreachable endpoint.
    ReadOnlyError
        If access is denied.
    """
    if "::" in url:
        return True
    protocol = url.partition("://")[0].lower()
    options = dict(storage_options or {})
    fs = probe_filesystem(protocol, options)
    path = type(fs)._strip_protocol(url)
    return stat_path(fs, url, path, protocol, options) is not None
