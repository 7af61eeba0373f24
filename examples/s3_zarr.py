"""Write a Zarr store to S3 and read it back, passing the endpoint and credentials explicitly.

Run: python examples/s3_zarr.py s3://bucket/prefix ENDPOINT_URL
(the tests run it against a loopback S3 server).
"""

from __future__ import annotations

import os
import sys

import numpy as np

import nwbstore


def main(url: str, endpoint_url: str) -> None:
    options = {
        "endpoint_url": endpoint_url,
        "key": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "secret": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    }
    with nwbstore.open(url, "w", storage_options=options) as store:
        ts = store.root.create_group("acquisition/speed")
        ts.create_dataset("data", data=np.random.default_rng(0).random(500))
        ts.attrs["unit"] = "m/s"
    with nwbstore.open(url, storage_options=options) as store:
        data = store["acquisition/speed/data"]
        print(f"{url}: format {store.backend}, {data.shape[0]} samples, mean {data[:].mean():.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
