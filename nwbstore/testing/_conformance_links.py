"""The link and reference conformance tests: soft, dangling and external links, references."""

from __future__ import annotations

import numpy as np
import pytest

from nwbstore.dtypes import is_reference_dtype, reference_dtype, string_dtype
from nwbstore.errors import (
    ContainsNodeError,
    NodeNotFoundError,
)
from nwbstore.links import ExternalLink, Reference, SoftLink
from nwbstore.nodes import Dataset, Group
from nwbstore.testing._bypass import ZarrBypass
from nwbstore.testing._conformance_base import ConformanceBase, Target
from nwbstore.testing._reference_content import (
    ds_at,
    group_at,
)

__all__ = ["LinkConformance"]


class LinkConformance(ConformanceBase):
    """The link and reference conformance tests (a part of ``StoreConformance``)."""

    # ============================================================================ links

    def test_soft_links(self, target: Target) -> None:
        data = np.arange(5.0)
        with self.writing(target, "w", "soft_links") as store:
            store.root.create_dataset("a/ds", data=data)
            store.root.create_soft_link("b/to_ds", "/a/ds")
            store.root.create_soft_link("b/to_group", "a")
            assert store.root.get_link("b/to_ds") == SoftLink("/a/ds")
            assert store.root.get_link("a/ds") is None
            assert store.root.get_link("a") is None
            target_ds = store["b/to_ds"]
            assert isinstance(target_ds, Dataset)
            np.testing.assert_array_equal(target_ds[...], data)
            assert isinstance(store["b/to_group"], Group)
            assert sorted(group_at(store, "b")) == ["to_ds", "to_group"]
            assert dict(group_at(store, "b").links()) == {
                "to_ds": SoftLink("/a/ds"),
                "to_group": SoftLink("/a"),
            }
            with pytest.raises(ContainsNodeError):
                store.root.create_soft_link("b/to_ds", "/a")
        raw = target.bypass
        assert raw.raw_links(target.url, "/b") == {
            "to_ds": ("soft", "/a/ds"),
            "to_group": ("soft", "/a"),
        }
        if isinstance(raw, ZarrBypass):
            # hdmf-zarr 0.14 (v3) writes _LINKS; the 0.13 layout (v2) writes zarr_link.
            key = "_LINKS" if raw.zarr_format(target.url) == 3 else "zarr_link"
            entries = raw.raw_attrs(target.url, "/b")[key]
            assert {"name": "to_ds", "source": ".", "path": "/a/ds"} in entries
        with target.open("r") as store:
            assert store.root.get_link("b/to_group") == SoftLink("/a")
            np.testing.assert_array_equal(ds_at(store, "b/to_ds")[...], data)

    def test_dangling_soft_link(self, target: Target) -> None:
        with self.writing(target, "w", "soft_links") as store:
            store.root.create_soft_link("dangling", "/nowhere/here")
            assert store.root.get_link("dangling") == SoftLink("/nowhere/here")
            assert "dangling" in store.root
            with pytest.raises(NodeNotFoundError) as info:
                store["dangling"]
            assert isinstance(info.value, KeyError)
        assert target.bypass.raw_links(target.url, "/") == {"dangling": ("soft", "/nowhere/here")}
        with target.open("r") as store:
            with pytest.raises(NodeNotFoundError):
                store["dangling"]
            seen: list[str] = []
            store.root.visititems(lambda n, o: seen.append(n))
            assert seen == []

    def test_external_link(self, target: Target) -> None:
        other_url, rel = self.sibling_url(target.url)
        other = Target(other_url, target.open_kwargs, target.read_kwargs, target.bypass)
        data = np.arange(6, dtype="u2")
        with self.writing(other, "w", "external_links") as ostore:
            ostore.root.create_dataset("x/data", data=data)
        with self.writing(target, "w", "external_links") as store:
            store.root.create_external_link("ext", rel, "/x/data")
            store.root.create_external_link("grp/ext_group", rel, "/x")
            link = store.root.get_link("ext")
            assert link == ExternalLink(rel, "/x/data"), link
            np.testing.assert_array_equal(ds_at(store, "ext")[...], data)
        raw = target.bypass
        links = raw.raw_links(target.url, "/")
        kind, source, path = links["ext"]
        assert kind == "external" and path == "/x/data"
        assert raw.resolve_external(target.url, source).rstrip("/") == other_url.rstrip("/"), (
            f"stored source {source!r} does not lead from {target.url} to {other_url}"
        )
        np.testing.assert_array_equal(raw.raw_read(other_url, "/x/data"), data)
        with target.open("r") as store:
            assert store.root.get_link("ext") == ExternalLink(rel, "/x/data")
            np.testing.assert_array_equal(ds_at(store, "ext")[...], data)
            assert isinstance(store["grp/ext_group"], Group)
            assert "data" in store["grp/ext_group"]

    # ============================================================================ references

    def test_reference_dataset(self, target: Target) -> None:
        refs = [Reference("/a/ds"), Reference("/b"), Reference("/a/ds")]
        with self.writing(target, "w", "references") as store:
            store.root.create_dataset("a/ds", data=[1.0])
            store.root.create_group("b")
            ds = store.root.create_dataset("refs", data=refs)
            assert is_reference_dtype(ds.dtype) and ds.shape == (3,)
            explicit = store.root.create_dataset("refs2", data=refs[:1], dtype=reference_dtype)
            assert explicit.shape == (1,)
        raw = target.bypass
        assert raw.raw_reference_target(target.url, "/refs") == ["/a/ds", "/b", "/a/ds"]
        assert raw.raw_reference_target(target.url, "/refs2") == ["/a/ds"]
        with target.open("r") as store:
            back = list(ds_at(store, "refs")[...])
            assert back == refs
            assert is_reference_dtype(ds_at(store, "refs").dtype)

    def test_compound_with_reference_field(self, target: Target) -> None:
        dt = np.dtype([("idx", "<i4"), ("target", reference_dtype), ("label", string_dtype())])
        rows = np.empty(2, dtype=dt)
        rows["idx"] = [0, 1]
        rows["target"] = [Reference("/a"), Reference("/a/ds")]
        rows["label"] = ["first", "second"]
        with self.writing(target, "w", "references", "compound") as store:
            store.root.create_dataset("a/ds", data=[1])
            store.root.create_dataset("table", data=rows)
        raw = target.bypass
        assert raw.raw_reference_target(target.url, "/table", field="target") == ["/a", "/a/ds"]
        back = raw.raw_read(target.url, "/table")
        assert list(back["idx"]) == [0, 1] and list(back["label"]) == ["first", "second"]
        with target.open("r") as store:
            got = ds_at(store, "table")[...]
            assert [r.path for r in got["target"]] == ["/a", "/a/ds"]
            assert list(got["label"]) == ["first", "second"]
