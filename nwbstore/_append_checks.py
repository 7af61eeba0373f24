"""What ``Dataset.append`` accepts: the block's shape, its dtype and the dataset's limits.

The dtype rule is NumPy's ``can_cast(block.dtype, dataset.dtype, "same_kind")`` (float64 into
float32 yes, float into int no, int into float yes), with one refinement: integer blocks go
into integer datasets whenever their values fit (``np.arange(10)`` into ``uint16`` yes,
``-1`` or ``70000`` into ``uint16`` no), checked on the values instead of the dtypes, so a
plain Python list of integers can be appended to any integer dataset it fits. Text goes into
string datasets, references into reference datasets, records into compound datasets with
the same field names (each field by the same rule).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nwbstore.dtypes import is_reference_dtype, is_string_dtype
from nwbstore.errors import SettingsError, UnsupportedDtypeError

__all__ = ["as_block", "check_block_dtype", "check_growth", "check_trailing_shape"]

_NUMERIC = "biuf"
_TEXT = "USOT"


def as_block(values: Any, dtype: np.dtype[Any]) -> np.ndarray:
    """``values`` as an array; records become arrays of ``dtype`` when given as tuples."""
    if isinstance(values, np.ndarray):
        return values
    if dtype.names is not None:
        try:
            return np.asarray(values, dtype=dtype)
        except (TypeError, ValueError):
            pass
    if is_reference_dtype(dtype) or is_string_dtype(dtype):
        arr = np.asarray(values)
        return arr if arr.dtype.kind in _TEXT else np.asarray(values, dtype=object)
    return np.asarray(values)


def check_trailing_shape(
    block: np.ndarray, shape: tuple[int, ...], axis: int, where: str
) -> np.ndarray:
    """Return ``block`` with the dataset's rank (a single row gains the append axis).

    Raises
    ------
    SettingsError
        If the block's other axes do not match the dataset's.
    """
    trailing = tuple(s for i, s in enumerate(shape) if i != axis)
    if block.ndim == len(shape) - 1:
        block = np.expand_dims(block, axis)
    got = tuple(s for i, s in enumerate(block.shape) if i != axis)
    if block.ndim != len(shape) or got != trailing:
        want = list(shape)
        want[axis] = "n"  # type: ignore[call-overload]
        raise SettingsError(
            f"cannot append a block of shape {block.shape} to {where} of shape {shape} along "
            f"axis {axis}: give a block of shape ({', '.join(map(str, want))}) or a single "
            f"row of shape {trailing}"
        )
    return block


def check_growth(
    shape: tuple[int, ...], maxshape: tuple[int | None, ...], axis: int, n: int, where: str
) -> None:
    """Refuse an append that would take ``axis`` beyond ``maxshape``.

    Raises
    ------
    SettingsError
        Naming the dataset, its maxshape and how to create a growable one.
    """
    limit = maxshape[axis]
    new = shape[axis] + n
    if limit is not None and new > limit:
        unlimited = tuple(None if i == axis else m for i, m in enumerate(maxshape))
        raise SettingsError(
            f"cannot append {n} rows to {where}: axis {axis} would grow to {new}, beyond its "
            f"maxshape {maxshape}; create the dataset with chunks and a maxshape that lets "
            f"the axis grow, e.g. DatasetSettings(chunks=..., maxshape={unlimited})"
        )


def check_block_dtype(block: np.ndarray, dtype: np.dtype[Any], where: str) -> None:
    """Refuse a block whose dtype or values do not go into a dataset of ``dtype``.

    Raises
    ------
    UnsupportedDtypeError
        Naming the dataset, both dtypes and what to do.
    """
    src = block.dtype
    if dtype.names is not None:
        if src.names is None or tuple(src.names) != tuple(dtype.names):
            raise UnsupportedDtypeError(
                f"cannot append a block of dtype {src} to {where} with fields {dtype.names}: "
                "give a structured array with the same field names "
                f"(e.g. np.array(rows, dtype=dataset.dtype))"
            )
        for name in dtype.names:
            check_block_dtype(block[name], dtype[name], f"field {name!r} of {where}")
        return
    if is_string_dtype(dtype):
        if src.kind not in _TEXT:
            raise _refused(src, dtype, where, "give str values")
        return
    if is_reference_dtype(dtype):
        if src.kind != "O":
            raise _refused(src, dtype, where, "give nwbstore.Reference values")
        return
    if dtype.kind in _NUMERIC:
        if src.kind not in _NUMERIC:
            raise _refused(src, dtype, where, f"convert the block to {dtype} first")
        if src.kind in "iu" and dtype.kind in "iu":
            _check_integer_range(block, dtype, where)
            return
        if not np.can_cast(src, dtype, "same_kind"):
            raise _refused(
                src,
                dtype,
                where,
                f"NumPy does not cast {src} to {dtype} under the 'same_kind' rule; "
                f"convert the block yourself (block.astype({str(dtype)!r})) if that is meant",
            )
        return
    if not np.can_cast(src, dtype, "same_kind"):
        raise _refused(src, dtype, where, f"convert the block to {dtype} first")


def _check_integer_range(block: np.ndarray, dtype: np.dtype[Any], where: str) -> None:
    if np.can_cast(block.dtype, dtype, "safe") or not block.size:
        return
    info = np.iinfo(dtype)
    low, high = int(block.min()), int(block.max())
    if low < info.min or high > info.max:
        raise UnsupportedDtypeError(
            f"cannot append {block.dtype} values from {low} to {high} to {where} of dtype "
            f"{dtype}: they do not fit in [{info.min}, {info.max}]; clip or rescale the block, "
            "or store the data in a wider dtype"
        )


def _refused(src: np.dtype[Any], dtype: np.dtype[Any], where: str, hint: str) -> Exception:
    return UnsupportedDtypeError(
        f"cannot append a block of dtype {src} to {where} of dtype {dtype}: {hint}"
    )
