"""One write path for Zarr content on object storage: every object written once, in parallel.

A writer that creates a store knows what it wrote; it need not ask the server.
:class:`ObjectWriteStore` wraps the zarr store of a location opened for writing and

- keeps every *metadata document* (``zarr.json``, ``.zgroup``, ``.zarray``, ``.zattrs``,
  ``.zmetadata``) in memory while the store is written, and writes the ones that changed at
  :meth:`~ObjectWriteStore.flush`: all of them in parallel, the root documents last (the root
  holds the consolidated metadata and, during a conversion, the incomplete mark, so a reader
  never sees the root vouch for a document or chunk that is not there yet);
- answers reads, existence checks and listings of keys it wrote itself, and of keys under a
  prefix it created or cleared in this session, without a request (a new store costs no
  HEAD, GET or LIST at all);
- PUTs each chunk once, in the background, with at most ``concurrency`` PUTs in flight
  across every array; ``set`` returns once the PUT has a slot, so zarr goes on encoding.
  A chunk written again in this session (a writer filling it piece by piece) is kept in
  memory and uploaded once at flush (at most :data:`REWRITE_BYTES` held);
  A chunk still in flight is read back from memory. A failed PUT is raised by the next write
  or by :meth:`~ObjectWriteStore.flush` (:class:`~nwbstore.errors.WriteFailedError`, or the
  error the storage layer raised, such as a refused write);
- claims a new store's root with an exclusive create (``If-None-Match: *`` on S3), so two
  writers creating the same store never mix: the second gets
  :class:`~nwbstore.errors.StoreExistsError`. The claimed root carries a random writer token
  (hidden attribute :data:`WRITER_ATTR`), so a create retried after a lost answer is told
  apart from another writer's;
- in a store that existed before (modes ``a``/``r+``) writes its first object at once, so
  credentials that may only read fail on the call that wrote, and reads each metadata
  document and listing from the server at most once.

Chunk retries and timeouts belong to the wrapped store (the storage layer below).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype

from nwbstore.errors import (
    CreateOutcomeUnknownError,
    NwbStoreError,
    StoreExistsError,
    WriteFailedError,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "METADATA_NAMES",
    "REWRITE_BYTES",
    "WRITER_ATTR",
    "ObjectWriteStore",
    "is_metadata_key",
]

#: Chunk PUTs in flight at most, across every array of a store, unless told otherwise.
DEFAULT_CONCURRENCY = 32
#: Bytes of chunks written more than once that are held for one upload at flush, at most.
REWRITE_BYTES = 64 * 2**20
#: Names of Zarr metadata documents (v3 and v2).
METADATA_NAMES = frozenset({"zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata"})
#: Root documents, in the order they are written at the end of a flush (the last one holds
#: the consolidated metadata).
_ROOT_ORDER = (".zgroup", ".zattrs", ".zmetadata", "zarr.json")
#: Root documents that say a store exists; the first one written claims the store.
_ROOT_MARKERS = frozenset({"zarr.json", ".zgroup"})
#: Hidden root attribute of a freshly claimed store: the token of the writer that claimed it.
WRITER_ATTR = "_NWBSTORE_WRITER"


def is_metadata_key(key: str) -> bool:
    """True if ``key`` names a Zarr metadata document (``a/b/zarr.json``, ``.zarray``, ...)."""
    return key.rpartition("/")[2] in METADATA_NAMES


def _ancestors(key: str) -> Iterable[tuple[str, str]]:
    """(prefix, child) pairs from the root down to ``key``: ``a/b/c`` -> ("", a), (a, b), ..."""
    parts = key.split("/")
    for i, part in enumerate(parts):
        yield "/".join(parts[:i]), part


def _slice(buf: Buffer, byte_range: ByteRequest | None) -> Buffer:
    if byte_range is None:
        return buf
    if isinstance(byte_range, RangeByteRequest):
        return buf[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return buf[byte_range.offset :]
    if isinstance(byte_range, SuffixByteRequest):
        return buf[max(len(buf) - byte_range.suffix, 0) :]
    raise TypeError(f"unexpected byte range {byte_range!r}")


def _digest(buf: Buffer) -> bytes:
    return hashlib.blake2b(buf.to_bytes(), digest_size=16).digest()


class ObjectWriteStore(Store):
    """A zarr store that buffers metadata and uploads chunks in the background.

    Parameters
    ----------
    inner
        The zarr store of the location (an ``FsspecStore``, or any other zarr store).
    url
        The store's URL, for error messages.
    fresh
        True when the location held nothing when it was opened: every key not written in
        this session is known to be absent, and the root is claimed exclusively.
    concurrency
        Chunk (and metadata) PUTs in flight at most.
    """

    def __init__(
        self,
        inner: Store,
        *,
        url: str,
        fresh: bool,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency={concurrency!r} must be a positive integer")
        super().__init__(read_only=inner.read_only)
        self._is_open = True
        self._inner = inner
        self._url = url
        self._concurrency = concurrency
        self._docs: dict[str, Buffer] = {}  # metadata documents: what they hold now
        self._saved: dict[str, bytes] = {}  # digest of each document as last written
        self._unsaved: set[str] = set()  # documents changed since they were last written
        self._pending: dict[str, Buffer] = {}  # chunks whose PUT is in flight
        self._rewritten: dict[str, Buffer] = {}  # chunks written again: uploaded at flush
        self._rewritten_bytes = 0
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stored: set[str] = set()  # keys written to the server in this session
        self._live: set[str] = set()  # keys that exist now because of this session
        self._children: dict[str, Counter[str]] = {}  # prefix -> child names of live keys
        self._absent_docs: set[str] = set()  # documents known to be missing on the server
        self._deleted: set[str] = set()  # keys deleted in this session
        self._cleared: list[str] = [""] if fresh else []  # prefixes known empty on the server
        self._listed: dict[str, set[str]] = {}  # server listings, read once
        self._failures: list[tuple[str, BaseException]] = []
        self._slots: asyncio.Semaphore | None = None
        self._claim_root = fresh  # the next root document written claims the store
        self._written_through = fresh  # an existing store's first write goes out at once
        self._token = uuid.uuid4().hex

    # -- what the store is ---------------------------------------------------------------------

    @property
    def inner(self) -> Store:
        """The wrapped zarr store."""
        return self._inner

    @property
    def concurrency(self) -> int:
        """PUTs in flight at most."""
        return self._concurrency

    @property
    def has_unsaved_documents(self) -> bool:
        """True if a metadata document changed since the last flush (by any zarr user)."""
        return bool(self._unsaved)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectWriteStore) and other._inner == self._inner

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"ObjectWriteStore({self._url!r})"

    def __str__(self) -> str:
        """The store's URL, as readers such as hdmf-zarr name a store (link sources)."""
        return self._url

    def with_read_only(self, read_only: bool = False) -> Store:
        """A view of this store (same buffered documents) that may or may not write."""
        view = copy.copy(self)
        view._read_only = read_only
        return view

    @property
    def supports_writes(self) -> bool:
        return True

    @property
    def supports_deletes(self) -> bool:
        return True

    @property
    def supports_listing(self) -> bool:
        return True

    @property
    def supports_consolidated_metadata(self) -> bool:
        return True

    def close(self) -> None:
        """Close the wrapped store (call :meth:`flush` first: nothing is written here)."""
        self._inner.close()

    # -- bookkeeping -----------------------------------------------------------------------------

    def _covered(self, key: str) -> bool:
        """True if ``key`` lies under a prefix that was empty on the server this session."""
        return any(p == "" or key == p or key.startswith(p + "/") for p in self._cleared)

    def _known_absent(self, key: str) -> bool:
        """True if the server cannot hold ``key`` apart from what this session stored."""
        if key in self._stored:
            return False
        return key in self._deleted or self._covered(key)

    def _add_live(self, key: str) -> None:
        if key in self._live:
            return
        self._live.add(key)
        for prefix, child in _ancestors(key):
            self._children.setdefault(prefix, Counter())[child] += 1

    def _drop_live(self, key: str) -> None:
        if key not in self._live:
            return
        self._live.discard(key)
        for prefix, child in _ancestors(key):
            counts = self._children.get(prefix)
            if counts is None:
                continue
            counts[child] -= 1
            if counts[child] <= 0:
                del counts[child]

    def _raise_failures(self) -> None:
        if not self._failures:
            return
        failures, self._failures = self._failures, []
        key, err = failures[0]
        if isinstance(err, NwbStoreError):
            raise err
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        reason = " ".join(str(err).split()) or type(err).__name__
        raise WriteFailedError(
            f"writing {key!r} to {self._url} failed{more}: {type(err).__name__}: {reason}. "
            "The store is incomplete; write it again (or resume the conversion with "
            "nwbstore convert --resume)"
        ) from err

    def _semaphore(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._concurrency)
        return self._slots

    async def _wait_for(self, keys: Iterable[str]) -> None:
        tasks = [self._tasks[k] for k in keys if k in self._tasks]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_idle(self) -> None:
        """Wait for the uploads in flight without raising their failures (before closing)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def _drain(self) -> None:
        """Wait for every chunk PUT in flight; raise the first failure."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)
        self._raise_failures()

    def preload(self, documents: dict[str, bytes]) -> None:
        """Take metadata documents already read from the server (so they are not read again)."""
        for key, raw in documents.items():
            value = default_buffer_prototype().buffer.from_bytes(raw)
            self._docs[key] = value
            self._saved[key] = _digest(value)

    # -- reads -----------------------------------------------------------------------------------

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        if key in self._docs:
            return _slice(self._docs[key], byte_range)
        if key in self._rewritten:
            return _slice(self._rewritten[key], byte_range)
        if key in self._pending:
            return _slice(self._pending[key], byte_range)
        if self._known_absent(key):
            return None
        if is_metadata_key(key):
            if key in self._absent_docs:
                return None
            value = await self._inner.get(key, prototype)
            if value is None:
                self._absent_docs.add(key)
                return None
            self._docs[key] = value
            self._saved[key] = _digest(value)
            return _slice(value, byte_range)
        return await self._inner.get(key, prototype, byte_range)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        return list(
            await asyncio.gather(*(self.get(key, prototype, rng) for key, rng in key_ranges))
        )

    async def exists(self, key: str) -> bool:
        if key in self._live:
            return True
        if self._known_absent(key):
            return False
        if is_metadata_key(key):
            return await self.get(key, default_buffer_prototype()) is not None
        return await self._inner.exists(key)

    # -- writes ----------------------------------------------------------------------------------

    async def set(self, key: str, value: Buffer) -> None:
        self._check_writable()
        self._raise_failures()
        if not isinstance(value, Buffer):
            raise TypeError(f"ObjectWriteStore.set(): value must be a Buffer, not {type(value)}")
        self._deleted.discard(key)
        if is_metadata_key(key):
            self._absent_docs.discard(key)
            self._docs[key] = value
            self._add_live(key)
            if self._claim_root and key in _ROOT_MARKERS:
                await self._claim(key, value)
            elif not self._written_through:
                await self._write_doc(key)
            else:
                self._unsaved.add(key)
            return
        if not self._written_through:
            self._written_through = True
            await self._inner.set(key, value)
            self._stored.add(key)
            self._add_live(key)
            return
        if key in self._stored or key in self._pending or key in self._rewritten:
            await self._rewrite(key, value)
            return
        await self._start_put(key, value)

    async def _start_put(self, key: str, value: Buffer) -> None:
        """Upload ``key`` in the background once a slot is free (after its own earlier PUT)."""
        await self._wait_for([key])  # a second write of a key in flight goes after the first
        slots = self._semaphore()
        await slots.acquire()
        self._pending[key] = value
        self._add_live(key)
        self._tasks[key] = asyncio.get_running_loop().create_task(self._put(key, value, slots))

    async def _rewrite(self, key: str, value: Buffer) -> None:
        """Keep a chunk written again in memory, uploaded once at flush.

        Writers that fill a chunk piece by piece (hdmf-zarr writes reference columns one
        element at a time) would otherwise PUT the same chunk once per piece. At most
        :data:`REWRITE_BYTES` are held; beyond, the oldest rewritten chunks are uploaded.
        """
        old = self._rewritten.pop(key, None)
        if old is not None:
            self._rewritten_bytes -= len(old)
        self._rewritten[key] = value
        self._rewritten_bytes += len(value)
        self._add_live(key)
        while self._rewritten_bytes > REWRITE_BYTES and len(self._rewritten) > 1:
            oldest = next(iter(self._rewritten))
            await self._start_put(oldest, self._pop_rewritten(oldest))

    def _pop_rewritten(self, key: str) -> Buffer:
        value = self._rewritten.pop(key)
        self._rewritten_bytes -= len(value)
        return value

    async def _put(self, key: str, value: Buffer, slots: asyncio.Semaphore) -> None:
        try:
            await self._inner.set(key, value)
            self._stored.add(key)
        except BaseException as err:  # reported by the next write or by flush
            self._failures.append((key, err))
        finally:
            if self._pending.get(key) is value:
                del self._pending[key]
            self._tasks.pop(key, None)
            slots.release()

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        if not await self.exists(key):
            await self.set(key, value)

    async def _write_doc(self, key: str) -> None:
        value = self._docs[key]
        await self._inner.set(key, value)
        self._stored.add(key)
        self._saved[key] = _digest(value)
        self._unsaved.discard(key)
        self._written_through = True

    async def _claim(self, key: str, value: Buffer) -> None:
        """Create the root document exclusively; refuse if another writer created it first."""
        self._claim_root = False
        self._unsaved.add(key)  # the real document is written at flush
        body = value.to_bytes()
        if key == "zarr.json":
            doc = json.loads(body)
            doc.setdefault("attributes", {})[WRITER_ATTR] = self._token
            body = json.dumps(doc).encode()
        claimed = value.__class__.from_bytes(body)
        create = getattr(self._inner, "create_object", None)
        if callable(create):  # S3: If-None-Match: *, retried (nwbstore.backends._s3_retries)
            try:
                await create(key, claimed)
            except CreateOutcomeUnknownError:  # a lost answer: read whose claim it is
                found = await self._inner.get(key, default_buffer_prototype())
                if found is None or found.to_bytes() != body:
                    raise self._taken() from None
            except StoreExistsError:
                raise self._taken() from None
            except PermissionError as err:
                raise _storage_error(self._inner, err) from err
        else:  # no conditional create: look first (not safe against a writer racing this one)
            found = await self._inner.get(key, default_buffer_prototype())
            if found is not None and found.to_bytes() != body:
                raise self._taken()
            await self._inner.set(key, claimed)
        self._stored.add(key)

    def _taken(self) -> StoreExistsError:
        return StoreExistsError(
            f"{self._url} was created by another writer while this one was creating it; "
            "nothing of this writer's was stored. Write to another location, or open the store "
            "with mode='a' to add to it"
        )

    async def _put_docs(self, keys: list[str]) -> None:
        slots = self._semaphore()

        async def put(key: str) -> None:
            async with slots:
                await self._write_doc(key)

        results = await asyncio.gather(*(put(k) for k in keys), return_exceptions=True)
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, BaseException):
                self._failures.append((key, result))
        self._raise_failures()

    async def flush(self) -> None:
        """Wait for the chunks in flight, then write the changed documents, root ones last.

        Raises
        ------
        WriteFailedError
            A PUT failed (after the storage layer's retries); the store is left incomplete.
        """
        await self._drain()
        for key in list(self._rewritten):
            await self._start_put(key, self._pop_rewritten(key))
        await self._drain()
        changed = sorted(k for k in self._unsaved if k in self._docs)
        changed = [k for k in changed if self._saved.get(k) != _digest(self._docs[k])]
        self._unsaved &= set(changed)
        root = [k for k in _ROOT_ORDER if k in changed]
        await self._put_docs([k for k in changed if k not in root])
        for key in root:
            await self._put_docs([key])

    # -- deletes ---------------------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        self._check_writable()
        await self._wait_for([key])
        on_server = not self._known_absent(key)
        self._forget(key)
        if on_server:
            await self._inner.delete(key)
        self._stored.discard(key)
        self._deleted.add(key)

    def _forget(self, key: str) -> None:
        if key in self._rewritten:
            self._pop_rewritten(key)
        self._docs.pop(key, None)
        self._pending.pop(key, None)
        self._unsaved.discard(key)
        self._saved.pop(key, None)
        self._drop_live(key)
        if is_metadata_key(key):
            self._absent_docs.add(key)

    async def delete_dir(self, prefix: str) -> None:
        self._check_writable()
        prefix = prefix.strip("/")
        under = [k for k in self._live if not prefix or k == prefix or k.startswith(prefix + "/")]
        await self._wait_for(under)
        stored = [k for k in self._stored if not prefix or k.startswith(prefix + "/")]
        if stored or not self._covered(prefix):
            await self._inner.delete_dir(prefix)
        for key in under:
            self._forget(key)
        self._stored.difference_update(stored)
        self._cleared.append(prefix)
        self._written_through = True  # deleting was allowed: so is writing
        for listed in [p for p in self._listed if not prefix or p.startswith(prefix)]:
            del self._listed[listed]
        if prefix == "":
            self._claim_root = True

    async def clear(self) -> None:
        await self.delete_dir("")

    # -- listing ---------------------------------------------------------------------------------

    async def _server_children(self, prefix: str) -> frozenset[str]:
        if self._covered(prefix):
            return frozenset()
        names = self._listed.get(prefix)
        if names is None:
            names = {name.rstrip("/") async for name in self._inner.list_dir(prefix)}
            self._listed[prefix] = names
        return frozenset(
            n for n in names if not self._known_absent(f"{prefix}/{n}" if prefix else n)
        )

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        prefix = prefix.strip("/")
        names = set(self._children.get(prefix, ()))
        names |= await self._server_children(prefix)
        for name in sorted(names):
            yield name

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        keys = {k for k in self._live if k.startswith(prefix)}
        if not self._covered(prefix.rstrip("/")):
            async for key in self._inner.list_prefix(prefix):
                if not self._known_absent(key):
                    keys.add(key)
        for key in sorted(keys):
            yield key

    def list(self) -> AsyncIterator[str]:
        return self.list_prefix("")


def _storage_error(store: Any, err: BaseException) -> BaseException:
    """nwbstore's error for a failed claim (a refused write names the credentials to fix)."""
    if isinstance(err, PermissionError):
        denied = getattr(store, "_denied", None)
        if callable(denied):
            result: BaseException = denied(err)
            return result
    return err
