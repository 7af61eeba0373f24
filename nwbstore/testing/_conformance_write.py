"""The write-side conformance tests: groups, datasets and dtypes, attributes, open modes."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

import nwbstore
from nwbstore.dtypes import is_string_dtype, string_dtype
from nwbstore.errors import (
    ContainsNodeError,
    NodeNotFoundError,
    NwbStoreError,
    SettingsError,
    StoreExistsError,
)
from nwbstore.links import Reference, SoftLink
from nwbstore.nodes import Group
from nwbstore.testing._bypass import ZarrBypass
from nwbstore.testing._conformance_base import ConformanceBase, Target
from nwbstore.testing._reference_content import (
    assert_attr_equal,
    ds_at,
    group_at,
)

__all__ = ["WriteConformance"]


INT_FLOAT_DTYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "bool",
    ">i4",
    ">f8",
]


class WriteConformance(ConformanceBase):
    """The write-side conformance tests (a part of ``StoreConformance``)."""

    # ============================================================================ groups

    def test_new_store_is_empty(self, target: Target) -> None:
        with self.writing(target) as store:
            assert isinstance(store.root, Group) and store.root.name == "/"
            assert len(store.root) == 0 and list(store.root) == []
            if self.backend_name:
                assert store.backend == self.backend_name
        assert target.bypass.raw_kind(target.url, "/") == "group"
        with target.open("r") as store:
            assert len(store.root) == 0

    def test_create_nested_groups(self, target: Target) -> None:
        with self.writing(target) as store:
            grp = store.root.create_group("a/b/c")
            assert grp.name == "/a/b/c" and grp.basename == "c"
            assert group_at(store, "a")["b/c"] == grp
            group_at(store, "a").create_group("d")
            store.root.create_group("/e")
            with pytest.raises(ContainsNodeError) as info:
                store.root.create_group("a/b")
            assert isinstance(info.value, ValueError) and "/a/b" in str(info.value)
        raw = target.bypass
        for path in ("/a", "/a/b", "/a/b/c", "/a/d", "/e"):
            assert raw.raw_kind(target.url, path) == "group", path
        with target.open("r") as store:
            assert sorted(store.root) == ["a", "e"]
            assert sorted(group_at(store, "a")) == ["b", "d"]

    def test_require_group(self, target: Target) -> None:
        with self.writing(target) as store:
            first = store.root.require_group("x/y")
            again = store.root.require_group("x/y")
            assert first == again and first.name == "/x/y"
            assert store.root.require_group("/") == store.root
            store.root.create_dataset("x/ds", data=[1, 2])
            with pytest.raises(ContainsNodeError):
                store.root.require_group("x/ds")
        assert target.bypass.raw_kind(target.url, "/x/y") == "group"

    def test_iterate_len_contains(self, target: Target) -> None:
        with self.writing(target) as store:
            root = store.root
            root.create_group("g2")
            root.create_group("g1/inner")
            root.create_dataset("d1", data=np.arange(3))
            assert sorted(root) == ["d1", "g1", "g2"] and len(root) == 3
            assert "g1" in root and "g1/inner" in root and "/g1/inner" in root
            assert "d1" in root and "g3" not in root and "g1/nope" not in root
            assert 3 not in root  # non-str keys are never members
            assert sorted(n for n, _ in root.groups()) == ["g1", "g2"]
            assert [n for n, _ in root.datasets()] == ["d1"]
        with target.open("r") as store:
            assert sorted(store.root.keys()) == ["d1", "g1", "g2"]
            assert len(store["g1"]) == 1

    def test_visititems_names_stop_and_links(self, target: Target) -> None:
        with self.writing(target, "w", "soft_links") as store:
            store.root.create_group("a/b")
            store.root.create_dataset("a/b/x", data=[1])
            store.root.create_dataset("z", data=[2])
            store.root.create_soft_link("a/alias", "/a/b")
            seen: list[str] = []
            assert store.root.visititems(lambda n, o: seen.append(n)) is None
            assert sorted(seen) == ["a", "a/b", "a/b/x", "z"]
            hit = store.root.visititems(lambda n, o: n if n.endswith("x") else None)
            assert hit == "a/b/x"
            sub: list[str] = []
            group_at(store, "a").visititems(lambda n, o: sub.append(n))
            assert sorted(sub) == ["b", "b/x"]
            links: list[tuple[str, Any]] = []
            store.root.visit_links(lambda n, link: links.append((n, link)))
            assert links == [("a/alias", SoftLink("/a/b"))]

    def test_delete_node(self, target: Target) -> None:
        with self.writing(target) as store:
            store.root.create_group("keep")
            store.root.create_dataset("gone/ds", data=[1, 2])
            del store.root["gone"]
            assert "gone" not in store.root
            with pytest.raises(NodeNotFoundError):
                del store.root["gone"]
        assert target.bypass.raw_kind(target.url, "/gone") == "missing"
        assert target.bypass.raw_kind(target.url, "/gone/ds") == "missing"
        assert target.bypass.raw_kind(target.url, "/keep") == "group"

    # ============================================================================ datasets

    def test_dataset_roundtrip_and_slices(self, target: Target) -> None:
        data = np.arange(24, dtype="i4").reshape(6, 4)
        with self.writing(target) as store:
            ds = store.root.create_dataset("g/ds", data=data)
            assert ds.name == "/g/ds" and ds.shape == (6, 4) and ds.dtype == np.dtype("i4")
            assert ds.ndim == 2 and len(ds) == 6 and ds.size == 24
            np.testing.assert_array_equal(ds[1:3, ::2], data[1:3, ::2])
            np.testing.assert_array_equal(ds[-1], data[-1])
            np.testing.assert_array_equal(np.asarray(ds), data)
            ds[0, :] = -1
            ds[2:4, 1] = [100, 101]
            with pytest.raises(ContainsNodeError):
                store.root.create_dataset("g/ds", data=data)
        data[0, :] = -1
        data[2:4, 1] = [100, 101]
        raw = target.bypass
        np.testing.assert_array_equal(raw.raw_read(target.url, "/g/ds"), data)
        assert raw.raw_dtype(target.url, "/g/ds") == np.dtype("i4")
        with target.open("r") as store:
            np.testing.assert_array_equal(ds_at(store, "g/ds")[...], data)

    def test_dataset_from_shape_is_filled(self, target: Target) -> None:
        with self.writing(target) as store:
            ds = store.root.create_dataset("blank", shape=(5, 2), dtype="f4")
            assert ds.shape == (5, 2) and ds.dtype == np.dtype("f4")
            ds[1] = [1.0, 2.0]
        expected = np.zeros((5, 2), dtype="f4")
        expected[1] = [1.0, 2.0]
        np.testing.assert_array_equal(target.bypass.raw_read(target.url, "/blank"), expected)

    def test_resize_within_maxshape(self, target: Target) -> None:
        settings = nwbstore.DatasetSettings(chunks=(4, 3), maxshape=(None, 3))
        with self.writing(target, "w", "resize") as store:
            ds = store.root.create_dataset("grow", data=np.ones((2, 3), "f8"), settings=settings)
            assert ds.maxshape[0] is None
            ds.resize((10, 3))
            assert ds.shape == (10, 3)
            ds[5:10] = 7.0
            ds.resize((6, 3))
            with pytest.raises(SettingsError) as info:
                ds.resize((6,))
            assert isinstance(info.value, ValueError) and "/grow" in str(info.value)
        expected = np.ones((6, 3))
        expected[2:5] = 0.0
        expected[5] = 7.0
        raw = target.bypass
        assert raw.raw_shape(target.url, "/grow") == (6, 3)
        np.testing.assert_array_equal(raw.raw_read(target.url, "/grow"), expected)
        with target.open("r") as store:
            assert ds_at(store, "grow").shape == (6, 3)

    def test_resize_beyond_declared_maxshape(self, target: Target) -> None:
        with self.writing(target, "w", "resize") as store:
            grow = store.root.create_dataset(
                "grow",
                data=np.ones((2, 3)),
                settings=nwbstore.DatasetSettings(chunks=(4, 3), maxshape=(None, 3)),
            )
            fixed = store.root.create_dataset(
                "fixed",
                data=np.zeros(4),
                settings=nwbstore.DatasetSettings(chunks=(4,), maxshape=(8,)),
            )
            assert grow.maxshape == (None, 3), f"declared maxshape (None, 3), got {grow.maxshape}"
            assert fixed.maxshape == (8,), f"declared maxshape (8,), got {fixed.maxshape}"
            fixed.resize(8)
            with pytest.raises(SettingsError) as info:
                fixed.resize(9)
            assert "/fixed" in str(info.value) and "maxshape" in str(info.value)
            with pytest.raises(SettingsError):
                grow.resize((2, 4))
        assert target.bypass.raw_shape(target.url, "/fixed") == (8,)
        assert target.bypass.raw_shape(target.url, "/grow") == (2, 3)
        with target.open("r") as store:
            assert ds_at(store, "fixed").maxshape == (8,)

    def test_resize_follows_declared_maxshape_without_settings(self, target: Target) -> None:
        """Without settings, the backend's declared maxshape decides whether resize works."""
        with self.writing(target) as store:
            ds = store.root.create_dataset("still", data=np.arange(4))
            if ds.maxshape == (4,):
                with pytest.raises(SettingsError):
                    ds.resize(5)
                expected = (4,)
            else:
                assert ds.maxshape == (None,), ds.maxshape
                ds.resize(5)
                expected = (5,)
        assert target.bypass.raw_shape(target.url, "/still") == expected

    def test_append_axis0(self, target: Target) -> None:
        settings = nwbstore.DatasetSettings(chunks=(2, 3), maxshape=(None, 3))
        with self.writing(target, "w", "resize") as store:
            ds = store.root.create_dataset("rows", shape=(0, 3), dtype="i8", settings=settings)
            ds.append(np.arange(6).reshape(2, 3))
            ds.append([6, 7, 8])
            assert ds.shape == (3, 3)
            with pytest.raises(SettingsError):
                ds.append(np.zeros((1, 4)))
        np.testing.assert_array_equal(
            target.bypass.raw_read(target.url, "/rows"), np.arange(9).reshape(3, 3)
        )

    def test_scalar_datasets(self, target: Target) -> None:
        with self.writing(target) as store:
            f = store.root.create_dataset("f", data=np.float64(1.25))
            i = store.root.create_dataset("i", data=7)
            s = store.root.create_dataset("s", data="hello µ")
            assert f.shape == () and f.ndim == 0 and float(f[()]) == 1.25
            assert int(i[()]) == 7
            assert s[()] == "hello µ"
            with pytest.raises(TypeError):
                len(f)
        raw = target.bypass
        assert raw.raw_shape(target.url, "/f") == ()
        assert float(raw.raw_read(target.url, "/f")) == 1.25
        assert int(raw.raw_read(target.url, "/i")) == 7
        assert raw.raw_read(target.url, "/s")[()] == "hello µ"
        with target.open("r") as store:
            assert ds_at(store, "s")[()] == "hello µ"
            assert ds_at(store, "f").shape == ()

    def test_empty_datasets(self, target: Target) -> None:
        with self.writing(target) as store:
            a = store.root.create_dataset("e1", data=np.zeros((0,), "f8"))
            b = store.root.create_dataset("e2", shape=(0, 3), dtype="i2")
            assert a.shape == (0,) and b.shape == (0, 3)
            assert np.asarray(a[...]).shape == (0,)
        raw = target.bypass
        assert raw.raw_shape(target.url, "/e1") == (0,)
        assert raw.raw_shape(target.url, "/e2") == (0, 3)
        assert raw.raw_read(target.url, "/e2").shape == (0, 3)
        with target.open("r") as store:
            assert np.asarray(ds_at(store, "e2")[...]).shape == (0, 3)

    @pytest.mark.parametrize("dtype", INT_FLOAT_DTYPES)
    def test_numeric_dtypes(self, target: Target, dtype: str) -> None:
        dt = np.dtype(dtype)
        if dt.kind == "b":
            data = np.array([True, False, True])
        else:
            info = np.iinfo(dt) if dt.kind in "iu" else np.finfo(dt)
            data = np.array([info.min, 0, info.max], dtype=dt)
        with self.writing(target) as store:
            ds = store.root.create_dataset("x", data=data)
            assert ds.dtype.kind == dt.kind and ds.dtype.itemsize == dt.itemsize
        raw = target.bypass.raw_read(target.url, "/x")
        assert raw.dtype.kind == dt.kind and raw.dtype.itemsize == dt.itemsize
        np.testing.assert_array_equal(raw, data)
        with target.open("r") as store:
            back = np.asarray(ds_at(store, "x")[...])
            np.testing.assert_array_equal(back, data)

    def test_fixed_bytes(self, target: Target) -> None:
        data = np.array([b"ab", b"cdefg", b""], dtype="S5")
        with self.writing(target, "w", "fixed_bytes") as store:
            ds = store.root.create_dataset("s", data=data)
            assert ds.dtype == np.dtype("S5")
        raw = target.bypass
        assert raw.raw_dtype(target.url, "/s") == np.dtype("S5")
        assert list(raw.raw_read(target.url, "/s")) == list(data)
        with target.open("r") as store:
            assert list(ds_at(store, "s")[...]) == list(data)

    def test_vlen_strings(self, target: Target) -> None:
        words = ["alpha", "βeta", "日本語 テキスト", "", "x" * 300]
        with self.writing(target) as store:
            ds = store.root.create_dataset("w", data=words)
            assert is_string_dtype(ds.dtype)
            blank = store.root.create_dataset("blank", shape=(2,), dtype=str)
            blank[0] = "ünï"
            blank[1] = "b"
            ds2 = store.root.create_dataset("grid", data=np.array([["a", "b"], ["c", "δ"]]))
            assert ds2.shape == (2, 2)
        raw = target.bypass
        assert list(raw.raw_read(target.url, "/w")) == words
        assert list(raw.raw_read(target.url, "/blank")) == ["ünï", "b"]
        assert raw.raw_read(target.url, "/grid").tolist() == [["a", "b"], ["c", "δ"]]
        with target.open("r") as store:
            back = ds_at(store, "w")[...]
            assert list(back) == words and all(isinstance(x, str) for x in back)
            assert is_string_dtype(ds_at(store, "w").dtype)
            assert ds_at(store, "w")[1] == "βeta"

    def test_compound(self, target: Target) -> None:
        dt = np.dtype([("id", "<i4"), ("x", "<f8"), ("ok", "?")])
        data = np.array([(1, 0.5, True), (2, -1.5, False)], dtype=dt)
        sdt = np.dtype([("id", "<u2"), ("label", string_dtype())])
        sdata = np.empty(2, dtype=sdt)
        sdata["id"] = [3, 4]
        sdata["label"] = ["three", "vier ü"]
        with self.writing(target, "w", "compound") as store:
            ds = store.root.create_dataset("c", data=data)
            assert ds.dtype.names == ("id", "x", "ok")
            sds = store.root.create_dataset("cs", data=sdata)
            assert sds.dtype.names == ("id", "label")
        raw = target.bypass
        back = raw.raw_read(target.url, "/c")
        for name in dt.names or ():
            assert list(back[name]) == list(data[name]), name
        sback = raw.raw_read(target.url, "/cs")
        assert list(sback["id"]) == [3, 4]
        assert list(sback["label"]) == ["three", "vier ü"]
        with target.open("r") as store:
            got = ds_at(store, "c")[...]
            assert list(got["x"]) == [0.5, -1.5] and list(got["id"]) == [1, 2]
            sgot = ds_at(store, "cs")[...]
            assert list(sgot["label"]) == ["three", "vier ü"]

    # ============================================================================ attributes

    ATTRS: ClassVar[dict[str, Any]] = {
        "int": 5,
        "neg": -3,
        "float": 2.5,
        "bool_t": True,
        "bool_f": False,
        "str": "plain",
        "utf8": "µs ñ",
        "np_int": np.int16(7),
        "np_uint": np.uint32(9),
        "np_float": np.float32(1.5),
        "np_bool": np.bool_(True),
        "array": np.arange(6, dtype="i4").reshape(2, 3),
        "farray": np.array([0.25, 0.5]),
        "list_int": [1, 2, 3],
        "list_float": [0.5, 1.5],
        "list_str": ["a", "β", "c"],
    }

    @staticmethod
    def _expected_attr(value: Any) -> Any:
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, np.generic):
            return value.item()
        return value

    def test_attributes_types(self, target: Target) -> None:
        with self.writing(target) as store:
            ds = store.root.create_dataset("d", data=[1, 2])
            grp = store.root.create_group("g")
            for node in (store.root, ds, grp):
                for key, value in self.ATTRS.items():
                    node.attrs[key] = value
                assert len(node.attrs) == len(self.ATTRS)
                for key, value in self.ATTRS.items():
                    assert_attr_equal(node.attrs[key], self._expected_attr(value), key)
        for path in ("/", "/d", "/g"):
            raw = target.bypass.raw_attrs(target.url, path)
            for key, value in self.ATTRS.items():
                assert_attr_equal(
                    raw[key], self._expected_attr(value), f"raw attribute {key!r} of {path}"
                )
        with target.open("r") as store:
            for path in ("/", "/d", "/g"):
                attrs = store[path].attrs
                assert sorted(attrs) == sorted(self.ATTRS)
                for key, value in self.ATTRS.items():
                    assert_attr_equal(attrs[key], self._expected_attr(value), f"{path} {key}")

    def test_attribute_update_and_delete(self, target: Target) -> None:
        with self.writing(target) as store:
            attrs = store.root.attrs
            attrs["a"] = 1
            attrs["b"] = "x"
            attrs["a"] = "now a string"
            attrs["b"] = [1.5, 2.5]
            del attrs["b"]
            assert "b" not in attrs and "a" in attrs and len(attrs) == 1
            with pytest.raises(NodeNotFoundError) as info:
                del attrs["b"]
            assert isinstance(info.value, KeyError)
        raw = target.bypass.raw_attrs(target.url, "/")
        assert raw["a"] == "now a string" and "b" not in raw
        with target.open("r") as store:
            assert dict(store.root.attrs) == {"a": "now a string"}

    def test_reference_attribute(self, target: Target) -> None:
        with self.writing(target, "w", "references") as store:
            store.root.create_dataset("acq/data", data=[1, 2, 3])
            store.root.attrs["ref"] = Reference("/acq/data")
            store["acq/data"].attrs["group_ref"] = Reference("/acq")
            got = store.root.attrs["ref"]
            assert isinstance(got, Reference) and got.path == "/acq/data"
        raw = target.bypass
        assert raw.raw_reference_target(target.url, "/", attr="ref") == "/acq/data"
        assert raw.raw_reference_target(target.url, "/acq/data", attr="group_ref") == "/acq"
        if isinstance(raw, ZarrBypass) and raw.zarr_format(target.url) == 3:
            assert raw.raw_attrs(target.url, "/")["ref"] == {
                "_REFERENCE": {"source": ".", "path": "/acq/data"}
            }
        with target.open("r") as store:
            assert store.root.attrs["ref"] == Reference("/acq/data")
            assert store["acq/data"].attrs["group_ref"].path == "/acq"

    # ============================================================================ modes

    def test_mode_r_plus_and_a_keep_content(self, target: Target) -> None:
        with self.writing(target) as store:
            store.root.create_dataset("first", data=[1])
        with target.open("r+") as store:
            assert "first" in store
            store.root.create_group("second")
        with target.open("a") as store:
            store.root.attrs["third"] = 3
        raw = target.bypass
        assert raw.raw_kind(target.url, "/first") == "dataset"
        assert raw.raw_kind(target.url, "/second") == "group"
        assert raw.raw_attrs(target.url, "/")["third"] == 3

    def test_mode_w_replaces_and_w_minus_refuses(self, target: Target) -> None:
        with self.writing(target) as store:
            store.root.create_group("old")
        with pytest.raises(StoreExistsError) as info:
            target.open("w-")
        assert isinstance(info.value, FileExistsError)
        assert target.bypass.raw_kind(target.url, "/old") == "group"
        with target.open("w") as store:
            assert "old" not in store
            store.root.create_group("new")
        assert target.bypass.raw_kind(target.url, "/old") == "missing"
        assert target.bypass.raw_kind(target.url, "/new") == "group"

    def test_mode_w_minus_creates(self, target: Target) -> None:
        with self.writing(target, "w-") as store:
            store.root.create_group("g")
        assert target.bypass.raw_kind(target.url, "/g") == "group"

    def test_writes_after_close_refused(self, target: Target) -> None:
        with self.writing(target) as store:
            pass
        assert store.closed
        with pytest.raises(NwbStoreError):
            store.root.create_group("late")
