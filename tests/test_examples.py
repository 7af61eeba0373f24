"""The runnable examples in examples/ run as they are documented."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import h5py
import numpy as np
import zarr

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == expect, done.stderr
    return done


def test_quickstart(tmp_path: Path) -> None:
    out = run(str(EXAMPLES / "quickstart.py"), str(tmp_path)).stdout
    assert "quickstart.h5: backend hdf5" in out
    assert "quickstart.zarr: backend zarr" in out
    assert f"files kept in {tmp_path}" in out
    with h5py.File(tmp_path / "quickstart.h5") as f:
        assert f["acquisition/raw/data"][0, 3] == 3
        assert f.get("acquisition/alias", getlink=True).path == "/acquisition/raw/timestamps"
    group = zarr.open_group(tmp_path / "quickstart.zarr", mode="r")
    assert group["acquisition/raw/data"][0, 3] == 3
    links = group["acquisition"].attrs["_LINKS"]
    assert links == [{"name": "alias", "source": ".", "path": "/acquisition/raw/timestamps"}]


def test_quickstart_without_a_folder_cleans_up(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "quickstart.zarr: backend zarr" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_stream_append(tmp_path: Path) -> None:
    out = run(str(EXAMPLES / "stream_append.py"), str(tmp_path)).stdout
    assert "appended 7090 rows of 16 channels" in out
    assert "after flush another reader sees 7090 rows" in out
    assert "after close: (9000, 16) int16, chunks (1000, 16)" in out
    assert f"files kept in {tmp_path}" in out
    stored = zarr.open_array(tmp_path / "stream.zarr/acquisition/ephys/data", mode="r")
    assert stored.shape == (9000, 16)
    assert not stored[7090:].any() and stored[:7090].any()


def test_stream_append_without_a_folder_cleans_up(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "stream_append.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "after close: (9000, 16)" in done.stdout and "files kept" not in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_examples_print_usage(tmp_path: Path) -> None:
    for script in ("quickstart.py", "s3_zarr.py", "stream_append.py"):
        helped = run(str(EXAMPLES / script), "--help")
        assert helped.stdout.startswith("usage:")
    missing = run(str(EXAMPLES / "s3_zarr.py"), expect=2)
    assert "usage:" in missing.stderr and "url" in missing.stderr
    wrong = run(str(EXAMPLES / "s3_zarr.py"), str(tmp_path / "x.zarr"), expect=2)
    assert "s3://bucket/prefix" in wrong.stderr
    (tmp_path / "file").write_text("")
    not_dir = run(str(EXAMPLES / "quickstart.py"), str(tmp_path / "file"), expect=2)
    assert "not a folder" in not_dir.stderr


def test_s3_zarr(s3_server, s3_bucket) -> None:
    url = f"s3://{s3_bucket}/example.zarr"
    out = run(str(EXAMPLES / "s3_zarr.py"), url, s3_server.endpoint_url).stdout
    assert "500 samples" in out
    assert "created bucket" not in out
    fs = s3_server.filesystem()
    assert fs.exists(f"{s3_bucket}/example.zarr/zarr.json")
    assert fs.exists(f"{s3_bucket}/example.zarr/acquisition/speed/data/zarr.json")


def test_s3_zarr_creates_the_bucket(s3_server) -> None:
    bucket = f"example-{uuid.uuid4().hex[:12]}"
    client = s3_server.boto3_client()
    assert bucket not in [b["Name"] for b in client.list_buckets()["Buckets"]]
    out = run(str(EXAMPLES / "s3_zarr.py"), f"s3://{bucket}/example.zarr", s3_server.endpoint_url)
    assert f"created bucket {bucket}" in out.stdout
    assert "500 samples" in out.stdout
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "example.zarr/zarr.json" in keys


def test_nwb_write_s3() -> None:
    """The example starts its own loopback S3 server; about one request per stored object."""
    import re

    out = run(str(EXAMPLES / "nwb_write_s3.py"), "--series", "5").stdout
    assert "wrote s3://example/session.nwb.zarr (Zarr v3)" in out
    found = re.search(r"(\d+) objects stored with (\d+) requests", out)
    assert found is not None, out
    objects, requests = int(found[1]), int(found[2])
    assert requests <= 1.05 * objects + 5
    assert "6 series" in out and "recording (200000, 16) int16, sample 100: 909" in out
    assert run(str(EXAMPLES / "nwb_write_s3.py"), "--help").stdout.startswith("usage:")


def test_nwb_configure(tmp_path: Path) -> None:
    out = run(str(EXAMPLES / "nwb_configure.py"), str(tmp_path)).stdout
    assert out.startswith("HDF5 dataset configurations\n")
    assert "acquisition/MyTimeSeries/data\n-----------------------------\n" in out
    assert "  buffer shape : (20000, 8)\n  expected RAM usage : 640.00 KB" in out
    assert "written: chunks=(10000, 8) compression=zstd(level=5" in out
    with h5py.File(tmp_path / "configured.nwb") as f:
        assert f["acquisition/MyTimeSeries/data"].chunks == (10_000, 8)
    out = run(str(EXAMPLES / "nwb_configure.py"), str(tmp_path), "--backend", "zarr").stdout
    assert out.startswith("Zarr dataset configurations\n")
    array = zarr.open_array(tmp_path / "configured.nwb.zarr/acquisition/MyTimeSeries/data")
    assert array.chunks == (10_000, 8)
    assert array.compressors[0].level == 5
    assert run(str(EXAMPLES / "nwb_configure.py"), "--help").stdout.startswith("usage:")


def _iterative_values(rows: int) -> np.ndarray:
    """What examples/nwb_iterative_write.py puts in its memory map: (7 * r + c) % 30000."""
    r = np.arange(rows, dtype=np.int64)[:, None]
    return ((7 * r + np.arange(32)[None, :]) % 30_000).astype("int16")


def _peaks(out: str) -> dict[str, tuple[int, int, int]]:
    """url -> (data bytes, buffer bytes, peak traced bytes), from the example's output."""
    import re

    found = re.findall(
        r"^(\S+): \d+ x 32 int16 \((\d+) bytes.*buffers of (\d+) bytes.*"
        r"peak traced memory (\d+) bytes",
        out,
        flags=re.MULTILINE,
    )
    return {url: (int(d), int(b), int(p)) for url, d, b, p in found}


def _check_filled_later(filled: np.ndarray) -> None:
    assert filled.shape == (8, 10)
    assert (filled[0:3] == 1).all() and (filled[3:6] == 2).all()
    assert np.isnan(filled[6:]).all()  # never written: the fill value


def test_nwb_iterative_write(tmp_path: Path) -> None:
    """The memory map is written chunk by chunk, then the empty dataset is filled in mode 'a'."""
    from hdmf_zarr import NWBZarrIO
    from pynwb import NWBHDF5IO

    out = run(str(EXAMPLES / "nwb_iterative_write.py"), str(tmp_path)).stdout
    h5_url, zarr_url = str(tmp_path / "iterative.nwb"), str(tmp_path / "iterative.nwb.zarr")
    assert f"wrote {h5_url} (HDF5)" in out and f"wrote {zarr_url} (Zarr v3)" in out
    assert f"{h5_url}: filled_later allocated as (0, 10)" in out
    assert "first column [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, nan, nan]" in out
    assert f"files kept in {tmp_path}" in out
    expected = _iterative_values(100_000)
    with h5py.File(h5_url, "r") as f:
        data = f["acquisition/recording/data"]
        assert data.shape == (100_000, 32) and data.dtype == "int16"
        assert data.chunks == (10_000, 32)
        np.testing.assert_array_equal(data[:], expected)
        later = f["acquisition/filled_later/data"]
        assert later.maxshape == (None, 10) and later.chunks == (1000, 10)
        _check_filled_later(later[:])
    group = zarr.open_group(zarr_url, mode="r")
    array = group["acquisition/recording/data"]
    assert array.shape == (100_000, 32) and array.chunks == (10_000, 32)
    np.testing.assert_array_equal(array[:], expected)
    _check_filled_later(group["acquisition/filled_later/data"][:])
    for io in (NWBHDF5IO(h5_url, "r"), NWBZarrIO(zarr_url, "r")):
        with io:
            nwbfile = io.read()
            assert nwbfile.acquisition["recording"].data[99_999, 31] == expected[99_999, 31]
            _check_filled_later(nwbfile.acquisition["filled_later"].data[:])
    # memory is bounded by the buffer: 4x the data costs about what 1x did
    small = _peaks(out)
    assert set(small) == {h5_url, zarr_url}, out
    big_urls = [str(tmp_path / "big.nwb"), str(tmp_path / "big.nwb.zarr")]
    url_args = [arg for url in big_urls for arg in ("--url", url)]
    big = _peaks(
        run(str(EXAMPLES / "nwb_iterative_write.py"), "--rows", "400000", *url_args).stdout
    )
    for small_url, big_url in zip((h5_url, zarr_url), big_urls, strict=True):
        data_bytes, buffer_bytes, peak = big[big_url]
        assert data_bytes == 400_000 * 32 * 2 and buffer_bytes == 10_000 * 32 * 2
        assert peak < data_bytes / 4, (big_url, peak)
        assert peak < small[small_url][2] + 2 * buffer_bytes, (big_url, peak, small)
    assert zarr.open_array(big_urls[1] + "/acquisition/recording/data").shape == (400_000, 32)


def test_nwb_iterative_write_with_a_data_chunk_iterator(tmp_path: Path) -> None:
    """The tutorial's generator in a DataChunkIterator; options are checked."""
    out = run(
        str(EXAMPLES / "nwb_iterative_write.py"),
        str(tmp_path),
        "--iterator",
        "datachunk",
        "--rows",
        "3000",
        "--buffer-rows",
        "500",
    ).stdout
    assert _peaks(out).keys() == {
        str(tmp_path / "iterative.nwb"),
        str(tmp_path / "iterative.nwb.zarr"),
    }
    expected = _iterative_values(3000)
    with h5py.File(tmp_path / "iterative.nwb", "r") as f:
        assert f["acquisition/recording/data"].chunks == (500, 32)
        np.testing.assert_array_equal(f["acquisition/recording/data"][:], expected)
    stored = zarr.open_array(tmp_path / "iterative.nwb.zarr/acquisition/recording/data", mode="r")
    assert stored.chunks == (500, 32)
    np.testing.assert_array_equal(stored[:], expected)
    script = str(EXAMPLES / "nwb_iterative_write.py")
    tiny = str(tmp_path / "tiny.nwb")  # fewer rows than a buffer: one short chunk
    assert (
        f"{tiny}: read back recording (50, 32) int16"
        in run(script, "--rows", "50", "--url", tiny).stdout
    )
    with h5py.File(tiny, "r") as f:
        assert f["acquisition/recording/data"].chunks == (50, 32)
        np.testing.assert_array_equal(f["acquisition/recording/data"][:], _iterative_values(50))
    assert run(script, "--help").stdout.startswith("usage:")
    assert "--rows" in run(script, "--rows", "0", expect=2).stderr
    (tmp_path / "file").write_text("")
    assert "not a folder" in run(script, str(tmp_path / "file"), expect=2).stderr


def test_nwb_iterative_write_to_s3(s3_server, s3_bucket, tmp_path: Path) -> None:
    """--url s3://...: Zarr written and filled later on S3; HDF5 uploaded, not changed."""
    import os

    urls = [f"s3://{s3_bucket}/it.nwb.zarr", f"s3://{s3_bucket}/it.nwb"]
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_server.endpoint_url, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "nwb_iterative_write.py"), "--rows", "20000"]
        + [arg for url in urls for arg in ("--url", url)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert f"{urls[1]}: HDF5 on object storage cannot be changed in place" in done.stdout
    assert _peaks(done.stdout).keys() == set(urls)
    fs = s3_server.filesystem()
    store = zarr.open_group(urls[0], mode="r", storage_options=s3_server.storage_options)
    np.testing.assert_array_equal(store["acquisition/recording/data"][:], _iterative_values(20_000))
    _check_filled_later(store["acquisition/filled_later/data"][:])
    local = tmp_path / "it.nwb"
    fs.get(f"{s3_bucket}/it.nwb", str(local))
    with h5py.File(local, "r") as f:
        np.testing.assert_array_equal(f["acquisition/recording/data"][:], _iterative_values(20_000))
        assert f["acquisition/filled_later/data"].shape == (0, 10)


def test_nwb_link_timeseries(tmp_path: Path) -> None:
    """B links A's data and TimeSeries, C copies the data; C still reads once A is gone."""
    from hdmf_zarr import NWBZarrIO
    from pynwb import NWBHDF5IO

    out = run(str(EXAMPLES / "nwb_link_timeseries.py"), str(tmp_path)).stdout
    assert (
        "B: acquisition/test_timeseries4/data is an ExternalLink to "
        "external1_example.nwb:/acquisition/test_timeseries1/data" in out
    )
    assert "C: acquisition/test_timeseries4/data is a HardLink" in out
    row = str(list(range(990, 1000)))
    assert f"B read with NWBHDF5IO: test_timeseries4 (100, 10), row 99 {row}" in out
    assert f"B read with NWBZarrIO: test_timeseries4 (100, 10), row 99 {row}" in out
    data = np.arange(1000).reshape((100, 10))
    with h5py.File(tmp_path / "external_linkdataset_example.nwb", "r") as b:
        link = b["acquisition/test_timeseries4"].get("data", getlink=True)
        assert isinstance(link, h5py.ExternalLink)
        assert (link.filename, link.path) == (
            "external1_example.nwb",
            "/acquisition/test_timeseries1/data",
        )
        whole = b["acquisition"].get("test_timeseries1", getlink=True)
        assert isinstance(whole, h5py.ExternalLink) and whole.filename == "external1_example.nwb"
        np.testing.assert_array_equal(b["acquisition/test_timeseries4/data"][:], data)
    with h5py.File(tmp_path / "copied_example.nwb", "r") as c:
        link = c["acquisition/test_timeseries4"].get("data", getlink=True)
        assert isinstance(link, h5py.HardLink)
        np.testing.assert_array_equal(c["acquisition/test_timeseries4/data"][:], data)
        assert "test_timeseries1" not in c["acquisition"]
    b_zarr = zarr.open_group(tmp_path / "external_linkdataset_example.nwb.zarr", mode="r")
    assert b_zarr["acquisition/test_timeseries4"].attrs["_LINKS"] == [
        {
            "name": "data",
            "source": "../external1_example.nwb.zarr",
            "path": "/acquisition/test_timeseries1/data",
        }
    ]
    assert "data" not in b_zarr["acquisition/test_timeseries4"]
    [whole_entry] = b_zarr["acquisition"].attrs["_LINKS"]
    assert whole_entry["name"] == "test_timeseries1"
    c_zarr = zarr.open_group(tmp_path / "copied_example.nwb.zarr", mode="r")
    assert "_LINKS" not in c_zarr["acquisition/test_timeseries4"].attrs
    np.testing.assert_array_equal(c_zarr["acquisition/test_timeseries4/data"][:], data)
    # the copies do not need A
    import shutil

    (tmp_path / "external1_example.nwb").unlink()
    shutil.rmtree(tmp_path / "external1_example.nwb.zarr")
    for io in (
        NWBHDF5IO(str(tmp_path / "copied_example.nwb"), "r"),
        NWBZarrIO(str(tmp_path / "copied_example.nwb.zarr"), "r"),
    ):
        with io:
            got = io.read().acquisition["test_timeseries4"].data[:]
            np.testing.assert_array_equal(got, data)
    script = str(EXAMPLES / "nwb_link_timeseries.py")
    assert run(script, "--help").stdout.startswith("usage:")
    hdf5_only = run(script, str(tmp_path / "only"), "--backend", "hdf5").stdout
    assert "NWBHDF5IO" in hdf5_only and "NWBZarrIO" not in hdf5_only


def test_xarray_open(tmp_path: Path) -> None:
    """The xarray example's numbers are those h5py reads from the same file."""
    out = run(str(EXAMPLES / "xarray_open.py"), str(tmp_path)).stdout
    assert "ElectricalSeries: dims ('time', 'channel'), shape (30000, 32), int16" in out
    assert "stored chunks: {'time': 4096, 'channel': 32}" in out
    with h5py.File(tmp_path / "session.nwb", "r") as f:
        raw = f["acquisition/ElectricalSeries/data"][15000:15301, [3, 7]]
        index = f["units/spike_times_index"][:]
        x3 = f["general/extracellular_ephys/electrodes/x"][3]
    assert f"10 ms of channels 3 and 7: shape (301, 2), mean {raw.mean():.3f}" in out
    assert f"channel 3 is at x={x3}, in CA1" in out
    assert f"spikes per unit {np.diff(index, prepend=0).tolist()}" in out
    assert "Zarr tree: 53 groups" in out
    assert "speed: dims ('time',), time from timestamps: 200" in out


def test_remote_read() -> None:
    """Remote reads cost what the docs say; the slice equals h5py's read of the local file."""
    import re

    out = run(str(EXAMPLES / "remote_read.py"), "--latency-ms", "5").stdout
    cold = re.search(r"cold open \+ walk of (\d+) nodes: (\d+) requests in (\d+) rounds", out)
    assert cold is not None, out
    assert int(cold[1]) > 100 and int(cold[3]) <= 6
    remote_sum = re.search(r"10 ms of channels 3 and 7, sum (-?\d+): 1 requests in 1 rounds", out)
    local_sum = re.search(r"local h5py: sum (-?\d+)", out)
    assert remote_sum is not None and local_sum is not None, out
    assert remote_sum[1] == local_sum[1]
    assert "warm open + walk (catalog cached): 1 requests in 1 rounds, 0.00 MB" in out
    other = re.search(r"another user's first open \+ walk .*: (\d+) requests", out)
    assert other is not None and int(other[1]) == 2, out
    assert "xarray open_dataset: dims ('time', 'channel')" in out
