"""The read-side conformance tests: the reference content read back, raw, walked and refused."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from nwbstore.errors import (
    NodeNotFoundError,
    ReadOnlyError,
)
from nwbstore.nodes import Dataset, Group
from nwbstore.testing._conformance_base import ConformanceBase, Target
from nwbstore.testing._reference_content import (
    DATA,
    TEXT,
    check_reference_content,
    group_at,
)

__all__ = ["ReadConformance"]


class ReadConformance(ConformanceBase):
    """The read-side conformance tests (a part of ``StoreConformance``)."""

    # ============================================================================ read side

    def test_read_reference_content(self, populated: Target) -> None:
        with populated.open("r") as store:
            if self.backend_name:
                assert store.backend == self.backend_name
            if self.store_format:
                assert store.format == self.store_format
            assert store.mode == "r" and not store.writable
            assert not store.capabilities.writable
            check_reference_content(store)
        populated.bypass.check_store(populated.url)

    def test_read_raw_matches(self, populated: Target) -> None:
        raw = populated.bypass
        url = populated.url
        assert raw.raw_kind(url, "/acq/ts") == "group"
        assert raw.raw_kind(url, "/acq/ts/data") == "dataset"
        assert raw.raw_kind(url, "/nope") == "missing"
        np.testing.assert_array_equal(raw.raw_read(url, "/acq/ts/data"), DATA)
        assert list(raw.raw_read(url, "/acq/ts/text")) == TEXT
        assert raw.raw_reference_target(url, "/", attr="ref") == "/acq/ts/data"
        assert raw.raw_reference_target(url, "/acq/ts/refs") == ["/acq/ts/data", "/acq"]
        assert raw.raw_links(url, "/acq") == {"link": ("soft", "/acq/ts/data")}

    def test_read_visititems(self, populated: Target) -> None:
        with populated.open("r") as store:
            seen: list[tuple[str, str]] = []
            store.root.visititems(lambda n, o: seen.append((n, type(o).__mro__[1].__name__)))
            names = [n for n, _ in seen]
            assert "acq/link" not in names, "visititems followed a link"
            assert sorted(names) == sorted(
                [
                    "acq",
                    "acq/ts",
                    "acq/ts/data",
                    "acq/ts/timestamps",
                    "acq/ts/text",
                    "acq/ts/fixed",
                    "acq/ts/scalar",
                    "acq/ts/empty",
                    "acq/ts/table",
                    "acq/ts/refs",
                    "proc",
                ]
            )
            assert names.index("acq") < names.index("acq/ts") < names.index("acq/ts/data")
            kinds = {n: isinstance(store[n], Group) for n in names}
            assert kinds["acq"] and not kinds["acq/ts/data"]
            sub: list[str] = []
            group_at(store, "acq").visititems(lambda n, o: sub.append(n))
            assert "ts/data" in sub and all(not n.startswith("/") for n in sub)
            found = store.root.visititems(
                lambda n, o: n if isinstance(o, Dataset) and o.ndim == 0 else None
            )
            assert found == "acq/ts/scalar"

    def test_read_missing_node(self, populated: Target) -> None:
        with populated.open("r") as store:
            for path in ("nope", "acq/nope", "/acq/ts/data/deeper"):
                with pytest.raises(NodeNotFoundError) as info:
                    store[path]
                assert isinstance(info.value, KeyError)
                assert isinstance(info.value, FileNotFoundError)
                assert "nope" in str(info.value) or "data" in str(info.value)
            assert store.root.get("nope") is None
            assert "nope" not in store and "acq/nope" not in store
            assert "acq/ts/data" in store and "/acq/ts" in store
            with pytest.raises(NodeNotFoundError):
                store.root.get_link("nope")
            with pytest.raises(NodeNotFoundError):
                store.root.attrs["no-such-attribute"]

    def test_read_only_mode_refuses_writes(self, populated: Target) -> None:
        with populated.open("r") as store:
            ds = store["acq/ts/data"]
            assert isinstance(ds, Dataset)
            actions: list[Callable[[], Any]] = [
                lambda: store.root.create_group("new"),
                lambda: store.root.require_group("new"),
                lambda: store.root.create_dataset("new", data=[1]),
                lambda: store.root.attrs.__setitem__("a", 1),
                lambda: store.root.attrs.__delitem__("title"),
                lambda: ds.__setitem__(0, np.zeros(4, dtype="i2")),
                lambda: ds.resize((20, 4)),
                lambda: store.root.create_soft_link("l", "/acq"),
                lambda: store.root.__delitem__("proc"),
            ]
            for action in actions:
                with pytest.raises(ReadOnlyError) as info:
                    action()
                assert isinstance(info.value, PermissionError)
                assert posixpath.basename(populated.url.rstrip("/")) in str(info.value)
        raw = populated.bypass
        np.testing.assert_array_equal(raw.raw_read(populated.url, "/acq/ts/data"), DATA)
        assert populated.bypass.raw_kind(populated.url, "/new") == "missing"

    def test_close_twice_and_context_manager(self, populated: Target) -> None:
        store = populated.open("r")
        assert not store.closed
        store.close()
        store.close()
        assert store.closed
        with populated.open("r") as store2:
            assert not store2.closed
        assert store2.closed
