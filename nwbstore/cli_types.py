"""Argument types of the ``nwbstore`` command line: bad values are usage errors (exit 2).

Each function is an argparse ``type=``: it returns the parsed value or raises
``argparse.ArgumentTypeError``, which argparse prints after the usage line as
``nwbstore convert: error: argument --chunks: ...`` and exits with status 2. Messages say
what a valid value looks like and never repeat a ``--storage-options`` value (it may hold
credentials).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from typing import Any

from nwbstore.errors import SettingsError

__all__ = [
    "byte_size",
    "chunks_value",
    "compression_value",
    "json_options",
    "positive_int",
]

_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def positive_int(flag: str) -> Callable[[str], int]:
    """A ``type=`` for an integer >= 1 (``--jobs``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} {text!r} is not an integer") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} {text!r}: give 1 or more")
        return value

    return parse


def chunks_value(text: str) -> str:
    """One ``--chunks`` value: ``auto``, ``1000,16`` or ``PATH=1000,16`` (checked, kept as text).

    The values are combined by :func:`nwbstore.convert.chunks_option.parse_chunks`.
    """
    from nwbstore.convert.chunks_option import parse_chunks

    try:
        parse_chunks([text])
    except SettingsError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def compression_value(text: str) -> str:
    """``--compression NAME[:LEVEL]``: a codec of the table (or ``none``) and an integer level."""
    from nwbstore.codecs import CODEC_TABLE

    name, sep, level = text.partition(":")
    names = sorted({row.name for row in CODEC_TABLE if row.role == "compression"})
    if name.lower() not in (*names, "none"):
        raise argparse.ArgumentTypeError(
            f"--compression {text!r}: unknown codec {name!r}; choose one of "
            f"{', '.join(names)} or none (e.g. zstd:5, gzip:4)"
        )
    if sep:
        try:
            int(level)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--compression {text!r}: the level after ':' must be an integer (e.g. zstd:5)"
            ) from None
    return f"{name.lower()}{sep}{level}"


def json_options(text: str) -> dict[str, Any]:
    """``--storage-options``: a JSON object (its text is never echoed: it may hold secrets)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno}"
        raise argparse.ArgumentTypeError(
            f"--storage-options is not valid JSON ({where}); give an object such as "
            "'{\"anon\": true}'"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"--storage-options must be a JSON object, not a JSON {type(value).__name__} "
            "(e.g. '{\"anon\": true}')"
        )
    return value


def byte_size(text: str) -> int:
    """``--memb-size``: bytes, or a number with a unit (``2GiB``, ``500MB``, ``64k``)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise argparse.ArgumentTypeError(
            f"--memb-size {text!r}: give bytes or a size such as 2GiB, 512MiB or 1000000"
        )
    size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise argparse.ArgumentTypeError(f"--memb-size {text!r}: the size must be positive")
    return size
