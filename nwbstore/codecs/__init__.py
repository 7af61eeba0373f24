"""The codec mapping table between HDF5 filters and Zarr v2/v3 codecs.

:data:`CODEC_TABLE` is the single source of truth: settings, conversion and the docs page
(:func:`codec_table_markdown`, committed as ``docs/codecs.md``) all read it.
"""

from __future__ import annotations

from nwbstore.codecs._adapt import adapt_pipeline, supported_on
from nwbstore.codecs._doc import codec_table_markdown
from nwbstore.codecs._hdf5 import hdf5_filter_kwargs, read_hdf5_filters, specs_from_hdf5
from nwbstore.codecs._options import known_names, make_spec, require_row
from nwbstore.codecs._spec import CodecSpec
from nwbstore.codecs._table import (
    ALIASES,
    CODEC_TABLE,
    CodecRow,
    Param,
    row_by_hdf5_id,
    row_by_name,
    row_by_zarr_id,
)
from nwbstore.codecs._transcode import (
    DEFAULT_TRANSCODES,
    PORTABLE_RULES,
    PipelinePlan,
    Transcode,
    describe_pipeline,
    non_portable_stages,
    plan_pipeline,
    portable_flavour,
    transcode_table_markdown,
)
from nwbstore.codecs._zarr import specs_from_zarr, zarr_codec_kwargs

__all__ = [
    "ALIASES",
    "CODEC_TABLE",
    "DEFAULT_TRANSCODES",
    "PORTABLE_RULES",
    "CodecRow",
    "CodecSpec",
    "Param",
    "PipelinePlan",
    "Transcode",
    "adapt_pipeline",
    "codec_table_markdown",
    "describe_pipeline",
    "hdf5_filter_kwargs",
    "known_names",
    "make_spec",
    "non_portable_stages",
    "plan_pipeline",
    "portable_flavour",
    "read_hdf5_filters",
    "require_row",
    "row_by_hdf5_id",
    "row_by_name",
    "row_by_zarr_id",
    "specs_from_hdf5",
    "specs_from_zarr",
    "supported_on",
    "transcode_table_markdown",
    "zarr_codec_kwargs",
]
