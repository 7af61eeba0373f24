"""The backend conformance suite: one pytest class every nwbstore backend passes.

Subclass :class:`StoreConformance` in a test module (the subclass name must start with
``Test``) and supply three fixtures:

``new_url``
    The URL or path of a new, not yet existing store for one test.
``open_kwargs``
    Keyword arguments for :func:`nwbstore.open` when writing (``memb_size=``,
    ``storage_options=``, ``zarr_format=`` ...). :meth:`StoreConformance.read_kwargs` derives
    the ones used for mode ``"r"`` (by default the same).
``bypass``
    A :class:`Bypass` that reads what was stored directly with h5py or zarr, never through
    nwbstore: :class:`HDF5Bypass` or :class:`ZarrBypass`.

Every write test writes through nwbstore, closes the store, checks the stored result with the
bypass, then reopens the store read-only through nwbstore. Abilities a backend lacks
(``store.capabilities``) are skipped with :func:`pytest.skip` and a reason, never passed.
A read-only backend sets ``read_only = True`` and overrides :meth:`StoreConformance.populate`
to build the reference content natively (see :func:`write_reference_hdf5`); its write tests
are then skipped after checking that it declares ``capabilities.writable == False``.

Examples
--------
>>> class TestMyBackend(StoreConformance):  # doctest: +SKIP
...     @pytest.fixture
...     def new_url(self, tmp_path):
...         return str(tmp_path / "f.h5")
...
...     @pytest.fixture
...     def bypass(self):
...         return HDF5Bypass()
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest

import nwbstore
from nwbstore.dtypes import is_reference_dtype, is_string_dtype, reference_dtype, string_dtype
from nwbstore.errors import (
    ContainsNodeError,
    NodeNotFoundError,
    NwbStoreError,
    ReadOnlyError,
    SettingsError,
    StoreExistsError,
)
from nwbstore.links import ExternalLink, Reference, SoftLink
from nwbstore.nodes import Dataset, Group, Store
from nwbstore.testing._bypass import (
    Bypass,
    HDF5Bypass,
    ZarrBypass,
)
from nwbstore.testing._reference_content import (
    DATA,
    REFERENCE_ATTRS,
    TEXT,
    assert_attr_equal,
    check_reference_content,
    ds_at,
    group_at,
    write_reference_content,
    write_reference_hdf5,
)

__all__ = [
    "REFERENCE_ATTRS",
    "Bypass",
    "HDF5Bypass",
    "StoreConformance",
    "Target",
    "ZarrBypass",
    "check_reference_content",
    "ds_at",
    "group_at",
    "write_reference_content",
    "write_reference_hdf5",
]

# --------------------------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------------------------


@dataclass
class Target:
    """One test's store: where it is, how to open it, and how to read it behind nwbstore."""

    url: str
    open_kwargs: dict[str, Any]
    read_kwargs: dict[str, Any]
    bypass: Bypass

    def open(self, mode: str = "r") -> Store:
        """Open through nwbstore (read kwargs for ``"r"``, write kwargs otherwise)."""
        kwargs = self.read_kwargs if mode == "r" else self.open_kwargs
        return nwbstore.open(self.url, mode, **kwargs)  # type: ignore[arg-type]


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


class StoreConformance:
    """Conformance tests for one backend (subclass it; see the module docstring)."""

    #: A read-only backend: write tests are skipped after checking ``capabilities.writable``.
    read_only: ClassVar[bool] = False
    #: Run only the read-side tests (e.g. a second subclass reading natively written files).
    read_side_only: ClassVar[bool] = False
    #: Name of the sibling store used as an external-link target (same directory / bucket).
    sibling_name: ClassVar[str] = "other"
    #: Expected ``store.backend`` (empty: not checked).
    backend_name: ClassVar[str] = ""
    #: Expected ``store.format``: ``"hdf5"`` or ``"zarr"`` (empty: not checked).
    store_format: ClassVar[str] = ""

    # -- hooks a backend supplies --------------------------------------------------------

    @pytest.fixture
    def new_url(self) -> str:
        """URL of a new store (override)."""
        raise NotImplementedError("subclasses of StoreConformance define the new_url fixture")

    @pytest.fixture
    def open_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of nwbstore.open for writing (override when needed)."""
        return {}

    @pytest.fixture
    def bypass(self) -> Bypass:
        """The direct reader (override)."""
        raise NotImplementedError("subclasses of StoreConformance define the bypass fixture")

    def read_kwargs(self, open_kwargs: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments of nwbstore.open for mode ``"r"`` (default: ``open_kwargs``)."""
        return dict(open_kwargs)

    def sibling_url(self, url: str) -> tuple[str, str]:
        """``(url, url as written in the link)`` of another store next to ``url``."""
        ext = posixpath.splitext(url.rstrip("/"))[1]
        name = self.sibling_name + ext
        return posixpath.join(posixpath.dirname(url.rstrip("/")), name), name

    def populate(self, target: Target) -> None:
        """Write the reference content at ``target.url`` (default: through nwbstore)."""
        with target.open("w") as store:
            write_reference_content(store.root)

    # -- fixtures and helpers ------------------------------------------------------------

    @pytest.fixture
    def target(self, new_url: str, open_kwargs: dict[str, Any], bypass: Bypass) -> Target:
        return Target(str(new_url), dict(open_kwargs), self.read_kwargs(open_kwargs), bypass)

    @pytest.fixture
    def populated(self, target: Target) -> Target:
        self.populate(target)
        return target

    @contextmanager
    def writing(self, target: Target, mode: str = "w", *needs: str) -> Iterator[Store]:
        """Open for writing, or skip (with the reason) when the backend declares it cannot."""
        if self.read_side_only:
            pytest.skip(f"{type(self).__name__} runs the read-side tests only")
        if self.read_only:
            self.populate(target)
            with target.open("r") as store:
                assert not store.capabilities.writable, "read_only backend says it is writable"
                backend = store.backend
            pytest.skip(f"backend {backend!r} declares capabilities.writable=False")
        store = target.open(mode)
        try:
            assert store.capabilities.writable, f"{store!r} opened in {mode!r} is not writable"
            for need in needs:
                if not getattr(store.capabilities, need):
                    pytest.skip(f"backend {store.backend!r} declares capabilities.{need}=False")
            yield store
        finally:
            store.close()

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
