"""``python -m nwbstore.codecs`` prints the codec table page (``docs/codecs.md``)."""

from nwbstore.codecs import codec_table_markdown

print(codec_table_markdown(), end="")
