"""Write a Zarr store to S3 and read it back, passing the endpoint and credentials explicitly.

Run: python examples/s3_zarr.py s3://bucket/prefix [ENDPOINT_URL]
(ENDPOINT_URL defaults to $AWS_ENDPOINT_URL; credentials come from $AWS_ACCESS_KEY_ID and
$AWS_SECRET_ACCESS_KEY; the bucket is created if it does not exist. The tests run it against a
loopback S3 server.)
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

import nwbstore


def ensure_bucket(url: str, options: dict[str, Any]) -> None:
    """Create the bucket of ``url`` if it does not exist yet."""
    import s3fs

    bucket = url.removeprefix("s3://").split("/", 1)[0]
    fs = s3fs.S3FileSystem(**options)
    if not fs.exists(bucket):
        fs.mkdir(bucket)
        print(f"created bucket {bucket}")


def main(url: str, endpoint_url: str | None) -> None:
    options: dict[str, Any] = {
        "key": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "secret": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    }
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    ensure_bucket(url, options)
    with nwbstore.open(url, "w", storage_options=options) as store:
        ts = store.root.create_group("acquisition/speed")
        ts.create_dataset("data", data=np.random.default_rng(0).random(500))
        ts.attrs["unit"] = "m/s"
    with nwbstore.open(url, storage_options=options) as store:
        data = store["acquisition/speed/data"]
        print(f"{url}: format {store.backend}, {data.shape[0]} samples, mean {data[:].mean():.3f}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Write a small Zarr store to S3 with nwbstore and read it back."
    )
    parser.add_argument("url", help="where to write, such as s3://bucket/example.zarr")
    parser.add_argument(
        "endpoint_url",
        nargs="?",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="S3 endpoint such as http://127.0.0.1:9000 (default: $AWS_ENDPOINT_URL, else AWS)",
    )
    return parser


if __name__ == "__main__":
    parser = _parser()
    args = parser.parse_args()
    if not args.url.startswith("s3://") or not args.url.removeprefix("s3://").split("/")[0]:
        parser.error(f"url must look like s3://bucket/prefix, not {args.url!r}")
    main(args.url, args.endpoint_url)
