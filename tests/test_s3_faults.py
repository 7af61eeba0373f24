"""Object-storage faults: transient ones retried (bounded), permanent ones at once.

Everything runs against moto's ThreadedMotoServer behind the fault-injecting proxy
(:class:`nwbstore.testing.s3proxy.S3Proxy`); attempts are asserted with the proxy's request
counts, never with wall time.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import nwbstore
from nwbstore.backends._s3_retries import (
    MAX_ATTEMPTS,
    Fault,
    RetryPolicy,
    classify,
    s3_write_options,
)
from nwbstore.backends._zarr_storage import open_location
from nwbstore.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    CreateOutcomeUnknownError,
    EndpointUnreachableError,
    ReadOnlyError,
    RetriesExhaustedError,
    StoreExistsError,
)
from nwbstore.testing.s3proxy import closed_port_url, silent_endpoint

pytestmark = pytest.mark.s3

SECRET = "s3cr3t-never-shown-4711"


def _options(endpoint_url: str, *, key: str = "testing", secret: str = "testing") -> dict[str, Any]:
    return {
        "endpoint_url": endpoint_url,
        "key": key,
        "secret": secret,
        "client_kwargs": {"region_name": "us-east-1"},
        "skip_instance_cache": True,
    }


def _h5_source(path: Path) -> Path:
    rng = np.random.default_rng(7)
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "faults"
        acq = f.create_group("acquisition")
        acq.create_dataset(
            "ephys",
            data=rng.integers(-500, 500, (3000, 16), dtype="i2"),
            chunks=(250, 16),
            compression="gzip",
        )
        acq.create_dataset(
            "times",
            data=np.cumsum(rng.random(3000)),
            chunks=(500,),
            compression="gzip",
            compression_opts=6,
        )
        proc = f.create_group("processing/behavior")
        proc.create_dataset(
            "position",
            data=rng.random((1200, 2)),
            chunks=(100, 2),
            shuffle=True,
            compression="gzip",
        )
        proc["position"].attrs["unit"] = "m"
        f.create_dataset("labels", data=np.arange(40, dtype="i8"))
    return path


def _zarr_group(upstream: Any, key: str) -> zarr.Group:
    """The store opened with zarr directly (plain s3fs, straight to moto, no faults)."""
    from zarr.storage import FsspecStore

    store = FsspecStore.from_url(
        upstream.url(key), storage_options=_options(upstream.moto_url), read_only=True
    )
    return zarr.open_group(store, mode="r")


@pytest.fixture
def upstream(counting_s3: Any, s3_server: Any) -> Any:
    """``counting_s3`` (moto behind the proxy), plus ``moto_url`` to bypass the proxy."""
    counting_s3.moto_url = s3_server.endpoint_url
    return counting_s3


# -- transient faults are survived -------------------------------------------------------------


def test_convert_under_faults_verifies_equal(tmp_path: Path, upstream: Any) -> None:
    src = _h5_source(tmp_path / "src.h5")
    url = upstream.url("faults.zarr")
    # the write path stores each object once, so few requests: enough faults to hit several
    upstream.proxy.set_faults(fail_fraction=0.1, drop_fraction=0.1, reset_fraction=0.05, seed=11)
    nwbstore.convert(src, url, storage_options=upstream.storage_options, progress=False)
    injected = upstream.proxy.faults
    upstream.proxy.set_faults()
    assert injected["503"] > 0 and injected["drop"] + injected["reset"] > 0, injected

    report = nwbstore.verify(src, url, storage_options=upstream.storage_options)
    assert report and not report.differences, report.differences
    assert report.datasets == 4
    group = _zarr_group(upstream, "faults.zarr")
    with h5py.File(src, "r") as f:
        for name in ("acquisition/ephys", "acquisition/times", "processing/behavior/position"):
            np.testing.assert_array_equal(group[name][...], f[name][...])
        assert group["processing/behavior/position"].attrs["unit"] == "m"


def test_reads_under_faults_are_retried(upstream: Any) -> None:
    url = upstream.url("reads.zarr")
    data = np.arange(20_000, dtype="f8").reshape(1000, 20)
    with nwbstore.open(url, "w", storage_options=upstream.storage_options) as store:
        store.root.create_dataset(
            "x", data=data, settings=nwbstore.DatasetSettings(chunks=(50, 20))
        )
    upstream.proxy.set_faults(fail_fraction=0.1, drop_fraction=0.2, fault_kinds={"GET"}, seed=3)
    with nwbstore.open(url, "r", storage_options=upstream.storage_options) as store:
        np.testing.assert_array_equal(store["x"][...], data)
    assert upstream.proxy.faults["drop"] > 0 and upstream.proxy.faults["503"] > 0


def test_append_stream_under_faults_reads_back_equal(upstream: Any) -> None:
    url = upstream.url("stream.zarr")
    rng = random.Random(5)
    blocks = [np.full((rng.randint(1, 700), 8), i, dtype="i4") for i in range(40)]
    upstream.proxy.set_faults(fail_fraction=0.05, reset_fraction=0.03, lose_fraction=0.02, seed=9)
    with nwbstore.open(url, "w", storage_options=upstream.storage_options) as store:
        settings = nwbstore.DatasetSettings(chunks=(500, 8), maxshape=(None, 8))
        ds = store.root.create_dataset("data", shape=(0, 8), dtype="i4", settings=settings)
        for block in blocks:
            ds.append(block)
    injected = upstream.proxy.faults
    upstream.proxy.set_faults()
    assert sum(injected.values()) > 0
    got = _zarr_group(upstream, "stream.zarr")["data"][...]
    np.testing.assert_array_equal(got, np.concatenate(blocks))


# -- bounded retries ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 500])
def test_persistent_errors_exhaust_the_retries(upstream: Any, status: int) -> None:
    url = upstream.url("busy.zarr")
    upstream.proxy.set_faults(fail_fraction=1.0, fail_status=status)
    with pytest.raises(RetriesExhaustedError) as info:
        nwbstore.open(url, "w", storage_options=upstream.storage_options)
    assert dict(upstream.counts) == {"LIST": MAX_ATTEMPTS}  # the probe, retried, then given up
    err = info.value
    assert isinstance(err, ConnectionError) and isinstance(err, EndpointUnreachableError)
    assert err.attempts == MAX_ATTEMPTS and err.url == url
    assert err.elapsed is not None and 0 < err.elapsed <= 60
    assert url in str(err) and "try again later" in str(err)
    assert "testing" not in str(err)


def test_persistent_write_errors_exhaust_the_retries(
    upstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NWBSTORE_S3_MAX_ATTEMPTS", "3")
    url = upstream.url("busy-writes.zarr")
    upstream.proxy.set_faults(fail_fraction=1.0, fault_kinds={"PUT"})
    with pytest.raises(RetriesExhaustedError) as info:  # noqa: SIM117 - open itself writes zarr.json
        with nwbstore.open(url, "w", storage_options=upstream.storage_options) as store:
            store.root.create_group("g")
    assert upstream.counts["PUT"] == 3, dict(upstream.counts)
    assert info.value.attempts == 3
    assert "PUT" in str(info.value) and upstream.url("busy-writes.zarr/") in str(info.value)


# -- permanent errors fail at once ---------------------------------------------------------------


def test_invalid_credentials_fail_with_one_request(upstream: Any) -> None:
    url = upstream.url("creds.zarr")
    upstream.proxy.set_faults(fail_fraction=1.0, fail_status=403)
    options = _options(upstream.endpoint_url, key="AKIAEXAMPLEKEY", secret=SECRET)
    with pytest.raises(AccessDeniedError) as info:
        nwbstore.open(url, "w", storage_options=options)
    assert upstream.total == 1, dict(upstream.counts)
    assert url in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


def test_refused_write_fails_with_one_put(upstream: Any) -> None:
    url = upstream.url("readonly.zarr")
    upstream.proxy.set_faults(fail_fraction=1.0, fail_status=403, fault_kinds={"PUT"})
    with pytest.raises(ReadOnlyError) as info:  # noqa: SIM117 - open itself writes zarr.json
        with nwbstore.open(url, "w", storage_options=upstream.storage_options) as store:
            store.root.create_group("g")
    assert upstream.counts["PUT"] == 1, dict(upstream.counts)
    assert upstream.url("readonly.zarr") in str(info.value)


def test_missing_bucket_fails_fast(upstream: Any) -> None:
    url = "s3://no-such-bucket-faults/x.zarr"
    with pytest.raises(BucketNotFoundError) as info:
        nwbstore.open(url, "w", storage_options=upstream.storage_options)
    assert upstream.total <= 2, dict(upstream.counts)  # one listing, one bucket check
    assert "no-such-bucket-faults" in str(info.value)


def test_silent_endpoint_is_unreachable_after_one_attempt() -> None:
    with silent_endpoint() as silent:
        options = _options(silent.endpoint_url)
        with pytest.raises(EndpointUnreachableError) as info:
            nwbstore.open("s3://bucket/x.zarr", "w", storage_options=options)
        assert silent.connections == 1
    assert not isinstance(info.value, RetriesExhaustedError)
    assert silent.endpoint_url in str(info.value)


def test_closed_port_is_unreachable() -> None:
    endpoint = closed_port_url()
    with pytest.raises(EndpointUnreachableError) as info:
        nwbstore.open("s3://bucket/x.zarr", "w", storage_options=_options(endpoint))
    assert not isinstance(info.value, RetriesExhaustedError)
    assert endpoint in str(info.value)


# -- conditional create after a lost answer -------------------------------------------------------


def _raw_store(upstream: Any, key: str) -> Any:
    """The storage layer under the object-storage write path (retries, conditional create)."""
    loc = open_location(
        upstream.url(key), "w", zarr_format=3, storage_options=upstream.storage_options
    )
    return loc.store.inner


def test_conditional_create(upstream: Any) -> None:
    store = _raw_store(upstream, "cond.zarr")
    prototype = default_buffer_prototype()
    try:
        sync(store.create_object("lock", prototype.buffer.from_bytes(b"first")))
        with pytest.raises(StoreExistsError) as info:
            sync(store.create_object("lock", prototype.buffer.from_bytes(b"second")))
        assert not isinstance(info.value, CreateOutcomeUnknownError)
        assert upstream.url("cond.zarr/lock") in str(info.value)
    finally:
        store.close()
    assert upstream.filesystem().cat_file(f"{upstream.bucket}/cond.zarr/lock") == b"first"


@pytest.mark.parametrize("lost", [1, 2])
def test_conditional_create_after_a_lost_answer_is_reported(upstream: Any, lost: int) -> None:
    # 1 lost answer: aiohttp resends the PUT itself; 2: nwbstore's retry sends it again
    store = _raw_store(upstream, "cond-lost.zarr")
    upstream.proxy.set_faults(lose_fraction=1.0, fault_kinds={"PUT"}, max_faults=lost)
    upstream.reset()
    try:
        with pytest.raises(CreateOutcomeUnknownError) as info:
            sync(store.create_object("lock", default_buffer_prototype().buffer.from_bytes(b"x")))
    finally:
        store.close()
    assert upstream.counts["PUT"] == lost + 1 and upstream.proxy.faults == {"lose": lost}
    assert isinstance(info.value, FileExistsError) and not isinstance(info.value, StoreExistsError)
    assert upstream.url("cond-lost.zarr/lock") in str(info.value)
    fs = upstream.filesystem()
    assert fs.cat_file(f"{upstream.bucket}/cond-lost.zarr/lock") == b"x"  # the lost one landed


# -- the policy itself ---------------------------------------------------------------------------


def test_backoff_is_full_jitter_and_capped() -> None:
    policy = RetryPolicy()
    rng = random.Random(0)
    for attempt in range(1, 20):
        ceiling = min(5.0, 0.1 * 2 ** (attempt - 1))
        waits = [policy.delay(attempt, rng) for _ in range(50)]
        assert all(0 <= w <= ceiling for w in waits)
    assert (policy.max_attempts, policy.max_seconds) == (10, 60.0)


def test_policy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NWBSTORE_S3_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("NWBSTORE_S3_RETRY_SECONDS", "12.5")
    assert RetryPolicy.from_env() == RetryPolicy(max_attempts=4, max_seconds=12.5)
    monkeypatch.setenv("NWBSTORE_S3_MAX_ATTEMPTS", "0")
    with pytest.raises(ValueError, match="NWBSTORE_S3_MAX_ATTEMPTS"):
        RetryPolicy.from_env()


def test_classify() -> None:
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    def client_error(code: str, status: int) -> Exception:
        err = OSError(16, "translated by s3fs")
        err.__cause__ = ClientError(
            {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
        )
        return err

    assert classify(client_error("SlowDown", 503)) is Fault.TRANSIENT
    assert classify(client_error("InternalError", 500)) is Fault.TRANSIENT
    assert classify(client_error("RequestTimeout", 400)) is Fault.TRANSIENT
    answered = TimeoutError("RequestTimeout, as s3fs translates it")
    answered.__cause__ = client_error("RequestTimeout", 400).__cause__
    assert classify(answered, timeouts_unreachable=True) is Fault.TRANSIENT  # an answer
    for code, status in [
        ("AccessDenied", 403),
        ("InvalidAccessKeyId", 403),
        ("SignatureDoesNotMatch", 403),
        ("NoSuchBucket", 404),
        ("404", 404),
    ]:
        assert classify(client_error(code, status)) is Fault.PERMANENT, code
    assert classify(PermissionError("denied")) is Fault.PERMANENT
    assert classify(ValueError("bug")) is Fault.PERMANENT
    assert classify(ConnectionResetError()) is Fault.TRANSIENT
    assert classify(ConnectionRefusedError()) is Fault.UNREACHABLE
    assert classify(ConnectTimeoutError(endpoint_url="http://x")) is Fault.UNREACHABLE
    assert classify(ReadTimeoutError(endpoint_url="http://x")) is Fault.TRANSIENT
    assert (
        classify(ReadTimeoutError(endpoint_url="http://x"), timeouts_unreachable=True)
        is Fault.UNREACHABLE
    )
    refused = EndpointConnectionError(endpoint_url="http://x", error=ConnectionRefusedError())
    reset = EndpointConnectionError(endpoint_url="http://x", error=ConnectionResetError())
    assert classify(refused) is Fault.UNREACHABLE
    assert classify(reset) is Fault.TRANSIENT


def test_write_options_keep_explicit_values() -> None:
    mine = {
        "config_kwargs": {
            "read_timeout": 99,
            "max_pool_connections": 3,
            "retries": {"max_attempts": 9},
        },
        "max_concurrency": 4,
    }
    opts = s3_write_options(mine, 32)
    assert opts["config_kwargs"]["read_timeout"] == 99
    assert opts["config_kwargs"]["max_pool_connections"] == 3
    assert opts["config_kwargs"]["retries"] == {"total_max_attempts": 1, "mode": "standard"}
    assert opts["max_concurrency"] == 4
    assert mine["config_kwargs"]["retries"] == {"max_attempts": 9}  # not changed in place
    opts = s3_write_options({}, 32)
    config = opts["config_kwargs"]
    assert (config["connect_timeout"], config["read_timeout"]) == (5, 30)
    assert config["max_pool_connections"] == 32 and opts["max_concurrency"] == 1


def test_store_uses_the_write_options(upstream: Any) -> None:
    store = _raw_store(upstream, "opts.zarr")
    try:
        fs = store.fs
        assert fs.retries == 1 and fs.max_concurrency == 1
        assert fs.config_kwargs["retries"] == {"total_max_attempts": 1, "mode": "standard"}
        assert fs.config_kwargs["max_pool_connections"] >= 10
    finally:
        store.close()
