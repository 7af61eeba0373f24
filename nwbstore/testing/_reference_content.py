"""The conformance suite's reference content: written once, read back by every backend."""

from __future__ import annotations

from typing import Any

import numpy as np

from nwbstore.dtypes import is_reference_dtype, is_string_dtype, string_dtype
from nwbstore.links import Reference, SoftLink
from nwbstore.nodes import Dataset, Group, Store

__all__ = [
    "DATA",
    "REFERENCE_ATTRS",
    "TEXT",
    "assert_attr_equal",
    "check_reference_content",
    "ds_at",
    "group_at",
    "write_reference_content",
    "write_reference_hdf5",
]

# --------------------------------------------------------------------------------------------
# Reference content: written once, read by every backend
# --------------------------------------------------------------------------------------------

REFERENCE_ATTRS: dict[str, Any] = {
    "title": "conformance",
    "unicode": "µV ünïcødé ✓",
    "count": 3,
    "ratio": 0.5,
    "flag": True,
    "ints": [1, 2, 3],
    "floats": np.array([[0.5, 1.5], [2.5, 3.5]]),
    "names": ["a", "β", "c"],
}

DATA = np.arange(40, dtype=np.int16).reshape(10, 4)
TIMESTAMPS = np.linspace(0.0, 1.0, 10)
TEXT = ["alpha", "βeta", "日本語", ""]
FIXED = np.array([b"ab", b"cdefg"], dtype="S5")
TABLE = np.array(
    [(1, 0.5, "one"), (2, 1.5, "twö")], dtype=[("id", "<i4"), ("x", "<f8"), ("name", object)]
)


def write_reference_content(root: Group) -> None:
    """Write the reference tree through nwbstore (see :func:`check_reference_content`)."""
    root.attrs.update_many(REFERENCE_ATTRS)
    ts = root.create_group("acq/ts")
    ts.attrs["unit"] = "V"
    ts.create_dataset("data", data=DATA)
    ts.create_dataset("timestamps", data=TIMESTAMPS)
    ts.create_dataset("text", data=TEXT, dtype=string_dtype())
    ts.create_dataset("fixed", data=FIXED)
    ts.create_dataset("scalar", data=np.float64(2.5))
    ts.create_dataset("empty", shape=(0, 3), dtype="f4")
    table_dt = np.dtype([("id", "<i4"), ("x", "<f8"), ("name", string_dtype())])
    table = np.empty(2, dtype=table_dt)
    for name in ("id", "x", "name"):
        table[name] = TABLE[name]
    ts.create_dataset("table", data=table)
    ts.create_dataset("refs", data=[Reference("/acq/ts/data"), Reference("/acq")])
    root.attrs["ref"] = Reference("/acq/ts/data")  # HDF5 references need an existing target
    root.create_soft_link("acq/link", "/acq/ts/data")
    root.create_group("proc")


def write_reference_hdf5(target: Any) -> None:
    """Write the reference tree natively with h5py into ``target`` (path or binary file)."""
    import h5py

    with h5py.File(target, "w") as f:
        for key, value in REFERENCE_ATTRS.items():
            if isinstance(value, list) and value and isinstance(value[0], str):
                f.attrs.create(key, value, dtype=h5py.string_dtype())
            else:
                f.attrs[key] = value
        ts = f.create_group("acq/ts")
        ts.attrs["unit"] = "V"
        ts["data"] = DATA
        ts["timestamps"] = TIMESTAMPS
        ts.create_dataset("text", data=TEXT, dtype=h5py.string_dtype())
        ts["fixed"] = FIXED
        ts["scalar"] = np.float64(2.5)
        ts.create_dataset("empty", shape=(0, 3), dtype="f4")
        table_dt = np.dtype([("id", "<i4"), ("x", "<f8"), ("name", h5py.string_dtype())])
        ts.create_dataset("table", data=TABLE.astype(table_dt))
        refs = ts.create_dataset("refs", shape=(2,), dtype=h5py.ref_dtype)
        refs[0] = f["/acq/ts/data"].ref
        refs[1] = f["/acq"].ref
        f.attrs["ref"] = f["/acq/ts/data"].ref
        f["acq/link"] = h5py.SoftLink("/acq/ts/data")
        f.create_group("proc")


def assert_attr_equal(got: Any, expected: Any, where: str) -> None:
    if isinstance(expected, bool):
        assert isinstance(got, (bool, np.bool_)) and bool(got) is expected, f"{where}: {got!r}"
    elif isinstance(expected, (int, float, str)):
        assert got == expected and not isinstance(got, np.ndarray), f"{where}: {got!r}"
        if isinstance(expected, str):
            assert isinstance(got, str), f"{where}: {got!r} is {type(got)}, not str"
    else:
        exp = np.asarray(expected)
        arr = np.asarray(got)
        if exp.dtype.kind in "US":
            assert [str(x) for x in arr.ravel()] == [str(x) for x in exp.ravel()], where
            assert all(isinstance(x, str) for x in arr.ravel()), f"{where}: {got!r} not all str"
        else:
            assert arr.shape == exp.shape, f"{where}: shape {arr.shape} != {exp.shape}"
            np.testing.assert_array_equal(arr, exp, err_msg=where)


def ds_at(node: Store | Group, path: str) -> Dataset:
    """The dataset at ``path`` (fails the test if it is a group)."""
    found = node[path]
    assert isinstance(found, Dataset), f"{path} is {found!r}, not a dataset"
    return found


def group_at(node: Store | Group, path: str) -> Group:
    """The group at ``path`` (fails the test if it is a dataset)."""
    found = node[path]
    assert isinstance(found, Group), f"{path} is {found!r}, not a group"
    return found


def check_reference_content(store: Store) -> None:
    """Check, through nwbstore, everything :func:`write_reference_content` wrote."""
    root = store.root
    assert sorted(root) == ["acq", "proc"]
    assert sorted(group_at(root, "acq")) == ["link", "ts"]
    for key, value in REFERENCE_ATTRS.items():
        assert_attr_equal(root.attrs[key], value, f"root attribute {key!r}")
    ref = root.attrs["ref"]
    assert isinstance(ref, Reference) and ref.path == "/acq/ts/data", ref
    ts = root["acq/ts"]
    assert isinstance(ts, Group)
    assert ts.attrs["unit"] == "V"
    data = ts["data"]
    assert isinstance(data, Dataset)
    assert data.shape == DATA.shape and data.dtype == DATA.dtype
    np.testing.assert_array_equal(data[...], DATA)
    np.testing.assert_array_equal(data[2:5, 1], DATA[2:5, 1])
    np.testing.assert_array_equal(ds_at(ts, "timestamps")[...], TIMESTAMPS)
    text = ds_at(ts, "text")
    assert is_string_dtype(text.dtype), text.dtype
    assert list(text[...]) == TEXT
    assert all(isinstance(x, str) for x in text[...])
    fixed = ds_at(ts, "fixed")
    assert fixed.dtype == np.dtype("S5")
    assert list(fixed[...]) == list(FIXED)
    scalar = ds_at(ts, "scalar")
    assert scalar.shape == () and float(scalar[()]) == 2.5
    empty = ds_at(ts, "empty")
    assert empty.shape == (0, 3) and np.asarray(empty[...]).shape == (0, 3)
    table = ds_at(ts, "table")[...]
    assert list(table["id"]) == [1, 2] and list(table["x"]) == [0.5, 1.5]
    assert list(table["name"]) == ["one", "twö"]
    refs = ds_at(ts, "refs")
    assert is_reference_dtype(refs.dtype), refs.dtype
    values = list(refs[...])
    assert all(isinstance(r, Reference) for r in values), values
    assert [r.path for r in values] == ["/acq/ts/data", "/acq"]
    assert root.get_link("acq/link") == SoftLink("/acq/ts/data")
    assert root.get_link("acq/ts/data") is None
    np.testing.assert_array_equal(ds_at(root, "acq/link")[...], DATA)
    assert isinstance(root["proc"], Group) and len(root["proc"]) == 0
