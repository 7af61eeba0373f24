"""Refusing a destination that would overwrite the source of a conversion.

A destination is refused when it is the source, contains it or lies inside it: local paths
are compared after :func:`os.path.realpath` (symlinks, ``./x`` against ``x``, trailing
slashes), object-store URLs by protocol, bucket and key, one key containing the other when it
is a prefix ending at a ``/``. The check runs before anything is created or deleted, whatever
``overwrite`` or ``resume`` say.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable

from nwbstore.backends.registry import split_protocol
from nwbstore.errors import SameSourceAndDestinationError

__all__ = ["check_distinct", "overlaps"]


def _normalized(url: str) -> tuple[str, str, str]:
    """``(protocol, separator, path)`` with the path in a comparable form."""
    protocol, rest = split_protocol(url)
    if protocol == "file":
        return protocol, os.sep, os.path.realpath(os.path.expanduser(rest))
    path = posixpath.normpath("/" + rest.strip("/"))  # "bucket/a/../b/" -> "/bucket/b"
    return protocol, "/", path


def _inside(inner: str, outer: str, sep: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(sep) + sep)


def overlaps(a: str, b: str) -> bool:
    """True if the stores at ``a`` and ``b`` are the same, or one lies inside the other."""
    pa, sep, na = _normalized(a)
    pb, _, nb = _normalized(b)
    if pa != pb:
        return False
    return _inside(na, nb, sep) or _inside(nb, na, sep)


def check_distinct(src: str, dst: str, also_written: Iterable[str] = ()) -> None:
    """Raise if writing ``dst`` (and the temporary locations ``also_written``) could touch ``src``.

    Raises
    ------
    SameSourceAndDestinationError
        Naming both URLs; nothing has been touched.
    """
    for where in (dst, *also_written):
        if overlaps(src, where):
            what = f"the destination {dst}"
            if where != dst:
                what += f" (written first as {where})"
            raise SameSourceAndDestinationError(
                f"{what} {_relation(src, where)} the source {src}: the source is never "
                "written, even with --overwrite or --resume; choose another destination"
            )


def _relation(src: str, dst: str) -> str:
    _, sep, ns = _normalized(src)
    _, _, nd = _normalized(dst)
    if ns == nd:
        return "is"
    if _inside(ns, nd, sep):
        return "contains"
    return "lies inside"
