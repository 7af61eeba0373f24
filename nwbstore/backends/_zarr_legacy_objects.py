"""Read-only access to Zarr v2 object arrays that zarr-python 3 cannot open (hdmf-zarr 0.13).

hdmf-zarr 0.13 wrote with zarr 2. Its object arrays without Pickle use a safe object codec
(``json2`` for references, cached specifications and mixed columns; ``vlen-bytes`` or
``vlen-utf8`` for text) and carry ``"fill_value": 0``. zarr-python 3 refuses both (no data
type for ``json2`` object arrays; an integer fill value for ``vlen-bytes``), so nwbstore
decodes their chunks itself, as it does for the Pickle opt-in
(:mod:`nwbstore.backends._zarr_pickled`), with the safe codec's own decoder: JSON and
length-prefixed bytes, nothing executed. Values become nwbstore's (strings, references,
records); such datasets are read-only and convert to ordinary datasets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nwbstore.backends._zarr_pickled import PickledArray, PickledDataset
from nwbstore.errors import ReadOnlyError, UnsupportedDtypeError

__all__ = ["LegacyObjectArray", "LegacyObjectDataset", "is_legacy_object_array"]

#: Object codecs of zarr 2 that decode without executing anything.
SAFE_OBJECT_CODECS = ("json2", "json", "vlen-utf8", "vlen-bytes")


def is_legacy_object_array(meta: dict[str, Any] | None) -> bool:
    """True if ``.zarray`` metadata is a v2 object array with a safe object codec."""
    if not meta or meta.get("zarr_format") != 2 or meta.get("dtype") != "|O":
        return False
    filters = meta.get("filters") or []
    return (
        bool(filters)
        and isinstance(filters[0], dict)
        and filters[0].get("id") in (SAFE_OBJECT_CODECS)
    )


class LegacyObjectArray(PickledArray):
    """The chunks of one v2 object array with a JSON or vlen object codec, decoded safely."""

    def _check(self, meta: dict[str, Any], where: str) -> None:
        import numcodecs

        if not is_legacy_object_array(meta):
            raise UnsupportedDtypeError(
                f"{where} is not a Zarr v2 object array with one of the object codecs "
                f"{', '.join(SAFE_OBJECT_CODECS)}"
            )
        self._object_codec = numcodecs.get_codec(dict(meta["filters"][0]))

    def _decode_objects(self, data: bytes, index: tuple[int, ...]) -> np.ndarray:
        try:
            decoded = self._object_codec.decode(data)
        except Exception as err:
            raise UnsupportedDtypeError(
                f"{self.where}, chunk {index}: cannot decode it with the "
                f"{self._object_codec.codec_id} object codec ({err}); the chunk is corrupt"
            ) from err
        return np.asarray(decoded, dtype=object).reshape(-1)


class LegacyObjectDataset(PickledDataset):
    """A v2 object array zarr-python 3 cannot open, read through its safe object codec."""

    decoded_from_pickle = False

    def read_only_error(self) -> ReadOnlyError:
        """The error for a write: such datasets are read-only."""
        return ReadOnlyError(
            f"dataset {self.name!r} in {self.store.url} is a Zarr v2 object array that "
            "zarr-python 3 cannot open (written by hdmf-zarr 0.13 with zarr 2); it is read-only: "
            "convert the store (nwbstore convert) to get a writable copy"
        )
