"""Write ``hdmf_zarr_013_v2.nwb.zarr``: the session of ``hdmf_zarr_session.py`` as hdmf-zarr
0.13 wrote Zarr v2 stores, with ``numcodecs.JSON`` as the object codec instead of Pickle.

It needs hdmf-zarr 0.13 and zarr 2, which cannot live beside nwbstore's zarr 3, so the store
is committed and this script documents how it was made::

    python3.12 -m venv /tmp/hz013
    /tmp/hz013/bin/pip install "hdmf-zarr==0.13.*" "zarr<3" pynwb
    /tmp/hz013/bin/python tests/data/make_hdmf_zarr_013_v2.py tests/data/hdmf_zarr_013_v2.nwb.zarr

(``NWBZarrIO`` 0.13 does not pass ``object_codec_class`` on, so ``ZarrIO`` is used with
pynwb's type manager.) The ``TimeSeries`` and ``ElectricalSeries`` data carry
``Blosc(zstd, clevel=3)``; everything else has hdmf-zarr 0.13's default ``Blosc(lz4)``.
"""

import sys
from pathlib import Path

import numcodecs
from hdmf_zarr import ZarrDataIO, ZarrIO
from pynwb import get_manager

sys.path.insert(0, str(Path(__file__).parent))
from hdmf_zarr_session import build_session


def wrap(values, chunks):
    return ZarrDataIO(values, chunks=chunks, compressor=numcodecs.Blosc(cname="zstd", clevel=3))


if __name__ == "__main__":
    with ZarrIO(sys.argv[1], "w", manager=get_manager(), object_codec_class=numcodecs.JSON) as io:
        io.write(build_session(wrap))
