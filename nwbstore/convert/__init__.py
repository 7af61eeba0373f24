"""Conversion between any two stores (layer 4): :func:`convert` and its report."""

from __future__ import annotations

from nwbstore.convert.engine import SettingsOverride, convert
from nwbstore.convert.report import ConversionReport
from nwbstore.convert.truncation import truncate

__all__ = ["ConversionReport", "SettingsOverride", "convert", "truncate"]
