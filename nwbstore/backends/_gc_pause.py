"""Pause Python's cyclic garbage collector while h5py reads through an fsspec file object.

h5py holds its global lock while it calls a Python file object's ``readinto``; fsspec runs
the read on its event-loop thread. If cyclic garbage collection starts on that thread and
frees an h5py object, the object's deallocation waits for the lock the reading thread holds:
both threads wait forever (h5py issue #2019, "Potential deadlock from some combination of
h5py, gc, and fsspec"). :class:`GcPausedFile` wraps the file object so that the collector is
off for the duration of each read; a counter lets reads from several threads overlap, and
the collector is switched back on only when the last one ends (and only if it was on).
"""

from __future__ import annotations

import gc
import threading
from typing import Any

__all__ = ["GcPausedFile", "gc_paused"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


class gc_paused:  # lower case, like contextlib's context managers
    """Context manager: no cyclic garbage collection (in any thread) while inside."""

    def __enter__(self) -> None:
        global _depth, _was_enabled
        with _lock:
            if _depth == 0:
                _was_enabled = gc.isenabled()
                gc.disable()
            _depth += 1

    def __exit__(self, *exc: object) -> None:
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


class GcPausedFile:
    """A read-only file object whose reads run with the collector paused (see the module)."""

    def __init__(self, fileobj: Any) -> None:
        self._f = fileobj

    def readinto(self, buffer: Any) -> int:
        with gc_paused():
            return int(self._f.readinto(buffer))

    def read(self, size: int = -1) -> bytes:
        with gc_paused():
            return bytes(self._f.read(size))

    def __getattr__(self, name: str) -> Any:  # seek, tell, close, closed, size, ...
        return getattr(self._f, name)
