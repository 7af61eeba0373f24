"""A non-executing decoder for the bytes ``numcodecs.Pickle`` writes for NumPy arrays.

hdmf-zarr <= 0.13 stored object arrays (references, strings, compound rows) with the Pickle
codec. Unpickling runs whatever the stream names, so nwbstore never calls ``pickle.loads``:
this module walks the opcodes with :func:`pickletools.genops` and runs a small stack machine of
its own that knows only data opcodes (text, bytes, numbers, ``None``/``bool``, list, tuple,
dict and set building, the memo, frames). The few globals a NumPy array pickle needs
(``_reconstruct``, ``ndarray``, ``dtype``, ``scalar``, ``_frombuffer``, ``_codecs.encode``,
``bytes`` and hdmf-zarr's ``ZarrReference``, a plain ``dict`` subclass) are *recognised by
name* and the values are built here from their arguments; nothing named in the stream is
imported or called. Any other opcode or global raises :class:`~nwbstore.errors.PickleRefusedError`.
"""

from __future__ import annotations

import math
import pickletools
from typing import Any, Literal

import numpy as np

from nwbstore.errors import PickleRefusedError

__all__ = ["decode_pickle", "decode_pickled_array"]

_RECONSTRUCT = ("numpy.core.multiarray", "numpy._core.multiarray"), "_reconstruct"
_SCALAR = ("numpy.core.multiarray", "numpy._core.multiarray"), "scalar"
_FROMBUFFER = ("numpy.core.numeric", "numpy._core.numeric"), "_frombuffer"


class _Global:
    """A recognised global: only a tag, never the object the name refers to."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name


def _recognise(module: Any, name: Any) -> str | None:
    if not isinstance(module, str) or not isinstance(name, str):
        return None
    for kind, (modules, attr) in {
        "reconstruct": _RECONSTRUCT,
        "scalar": _SCALAR,
        "frombuffer": _FROMBUFFER,
    }.items():
        if module in modules and name == attr:
            return kind
    return {
        ("numpy", "ndarray"): "ndarray",
        ("numpy", "dtype"): "dtype",
        ("_codecs", "encode"): "encode",
        ("__builtin__", "bytes"): "bytes",
        ("builtins", "bytes"): "bytes",
        ("hdmf_zarr.utils", "ZarrReference"): "dict",
    }.get((module, name))


class _DtypeBox:
    """A ``numpy.dtype(code, align, copy)`` call, completed by BUILD with its state."""

    def __init__(self, code: str, refuse: Any) -> None:
        self.code = code
        self.dtype: np.dtype[Any] | None = None
        self._refuse = refuse
        try:
            self.dtype = np.dtype(code)
        except TypeError as err:
            raise refuse(f"dtype {code!r}") from err
        if self.dtype.kind not in "biufcOUSV":
            raise refuse(f"dtype {code!r}")

    def build(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (8, 9):
            raise self._refuse("a dtype state that is not NumPy's")
        order, names, fields, elsize = state[1], state[3], state[4], state[5]
        dt = self.dtype
        assert dt is not None
        if names is not None:
            if not isinstance(fields, dict) or not isinstance(elsize, int):
                raise self._refuse("a compound dtype state that is not NumPy's")
            spec: dict[str, Any] = {"names": [], "formats": [], "offsets": [], "itemsize": elsize}
            for name in names:
                entry = fields.get(name)
                if not isinstance(entry, tuple) or len(entry) < 2:
                    raise self._refuse(f"compound field {name!r}")
                spec["names"].append(name)
                spec["formats"].append(_unbox_dtype(entry[0], self._refuse))
                spec["offsets"].append(entry[1])
            self.dtype = np.dtype(spec)  # type: ignore[call-overload]
            return
        if dt.kind in "US" and isinstance(elsize, int) and elsize > 0:
            dt = np.dtype(f"{dt.kind}{elsize // (4 if dt.kind == 'U' else 1)}")
        if order in ("<", ">"):
            dt = dt.newbyteorder(order)
        self.dtype = dt


class _ArrayBox:
    """A ``_reconstruct(ndarray, ...)`` call, completed by BUILD with shape, dtype and data."""

    def __init__(self) -> None:
        self.array: np.ndarray | None = None


def _unbox_dtype(value: Any, refuse: Any) -> np.dtype[Any]:
    if isinstance(value, _DtypeBox) and value.dtype is not None:
        return value.dtype
    raise refuse("an array or scalar whose dtype is not a NumPy dtype")


def _fill_array(
    shape: Any, dtype: np.dtype[Any], fortran: bool, data: Any, refuse: Any
) -> np.ndarray:
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise refuse(f"array shape {shape!r}")
    size = math.prod(shape)
    order: Literal["C", "F"] = "F" if fortran else "C"
    if dtype.kind == "O":
        if not isinstance(data, list) or len(data) != size:
            raise refuse("an object array whose values do not match its shape")
        out = np.empty(size, dtype=object)
        for i, item in enumerate(data):
            out[i] = item
        # NumPy lists object items in C order whatever the layout
        return np.asarray(out.reshape(shape), order=order)
    if not isinstance(data, (bytes, bytearray)) or len(data) != size * dtype.itemsize:
        raise refuse("an array whose bytes do not match its shape and dtype")
    return np.frombuffer(bytes(data), dtype=dtype).reshape(shape, order=order).copy()


class _Machine:
    """The stack machine: one instance per decoded stream."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}

    def refuse(self, what: str) -> PickleRefusedError:
        return PickleRefusedError(
            f"{self.where}: its Pickle data uses {what}, which nwbstore does not decode. "
            "nwbstore decodes only plain values (text, bytes, numbers, None, lists, dicts, "
            "references) in NumPy arrays and never runs code from the data; re-create the "
            "dataset with hdmf-zarr >= 0.14 or nwbstore (JSON/string encodings) if you trust it."
        )

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise self.refuse("a malformed stream (no MARK)")
        at = self.marks.pop()
        items = self.stack[at:]
        del self.stack[at:]
        return items

    def pop(self) -> Any:
        if not self.stack or (self.marks and len(self.stack) <= self.marks[-1]):
            raise self.refuse("a malformed stream (stack underflow)")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise self.refuse("a malformed stream (empty stack)")
        return self.stack[-1]

    # -- the calls a NumPy array pickle makes -------------------------------------------------

    def reduce(self, func: Any, args: Any) -> Any:
        if not isinstance(func, _Global) or not isinstance(args, tuple):
            raise self.refuse("REDUCE on something other than a recognised NumPy name")
        kind = func.kind
        if kind == "encode" and len(args) == 2 and isinstance(args[0], str):
            if args[1] != "latin1":
                raise self.refuse(f"_codecs.encode with encoding {args[1]!r}")
            return args[0].encode("latin1")
        if kind == "bytes" and args == ():  # how protocol 2 spells b""
            return b""
        if kind == "dtype" and args and isinstance(args[0], str):
            return _DtypeBox(args[0], self.refuse)
        if kind == "reconstruct" and len(args) == 3:
            if not (isinstance(args[0], _Global) and args[0].kind == "ndarray"):
                raise self.refuse("_reconstruct of a class other than numpy.ndarray")
            return _ArrayBox()
        if kind == "scalar" and len(args) == 2:
            dt = _unbox_dtype(args[0], self.refuse)
            raw = args[1]
            if dt.kind == "O" or not isinstance(raw, (bytes, bytearray)):
                raise self.refuse("a NumPy object scalar")
            if len(raw) != dt.itemsize:
                raise self.refuse("a NumPy scalar whose bytes do not match its dtype")
            return np.frombuffer(bytes(raw), dtype=dt)[0].item()
        if kind == "frombuffer" and len(args) == 4:
            buf, dtype, shape, order = args
            dt = _unbox_dtype(dtype, self.refuse)
            if dt.kind == "O":
                raise self.refuse("_frombuffer with an object dtype")
            return _fill_array(shape, dt, order == "F", buf, self.refuse)
        raise self.refuse(f"{func.name} with arguments it does not take in a NumPy array pickle")

    def build(self, obj: Any, state: Any) -> None:
        if isinstance(obj, _DtypeBox):
            obj.build(state)
            return
        if isinstance(obj, _ArrayBox) and obj.array is None:
            if not isinstance(state, tuple) or len(state) != 5:
                raise self.refuse("an array state that is not NumPy's")
            _version, shape, dtype, fortran, data = state
            dt = _unbox_dtype(dtype, self.refuse)
            obj.array = _fill_array(shape, dt, bool(fortran), data, self.refuse)
            return
        raise self.refuse("BUILD on something other than a NumPy array or dtype")

    # -- the opcodes --------------------------------------------------------------------------

    def run(self, data: bytes) -> Any:
        try:
            ops = list(pickletools.genops(data))
        except (ValueError, EOFError, UnicodeDecodeError) as err:
            raise self.refuse(f"a malformed stream ({err})") from None
        for op, arg, _pos in ops:
            name = op.name
            if name == "STOP":
                return _finish(self.pop(), self.refuse)
            handler = _HANDLERS.get(name)
            if handler is None:
                raise self.refuse(f"opcode {name}")
            handler(self, arg)
        raise self.refuse("a stream without STOP")


def _global(m: _Machine, module: Any, name: Any) -> None:
    kind = _recognise(module, name)
    if kind is None:
        raise m.refuse(f"global '{module}.{name}'")
    m.stack.append(_Global(kind, f"{module}.{name}"))


def _newobj(m: _Machine, _arg: Any) -> None:
    args = m.pop()
    cls = m.pop()
    if isinstance(cls, _Global) and cls.kind == "dict" and args == ():
        m.stack.append({})
        return
    raise m.refuse("NEWOBJ of a class other than hdmf_zarr.utils.ZarrReference")


def _setitems(m: _Machine, items: list[Any]) -> None:
    target = m.top()
    if not isinstance(target, dict) or len(items) % 2:
        raise m.refuse("SETITEM on something other than a dict")
    try:
        for k, v in zip(items[::2], items[1::2], strict=True):
            target[k] = v
    except TypeError:
        raise m.refuse("a dict key that is not a plain value") from None


def _extend(m: _Machine, items: list[Any]) -> None:
    target = m.top()
    if not isinstance(target, list):
        raise m.refuse("APPEND on something other than a list")
    target.extend(items)


def _add(m: _Machine, items: list[Any]) -> None:
    target = m.top()
    if not isinstance(target, set):
        raise m.refuse("ADDITEMS on something other than a set")
    try:
        target.update(items)
    except TypeError:
        raise m.refuse("a set item that is not a plain value") from None


def _frozen(m: _Machine, items: list[Any]) -> None:
    try:
        m.stack.append(frozenset(items))
    except TypeError:
        raise m.refuse("a set item that is not a plain value") from None


def _dict_from(m: _Machine, items: list[Any]) -> None:
    m.stack.append({})
    _setitems(m, items)


def _memo_put(m: _Machine, key: int) -> None:
    m.memo[key] = m.top()


def _memo_get(m: _Machine, key: Any) -> None:
    if key not in m.memo:
        raise m.refuse(f"a memo entry {key} that was never stored")
    m.stack.append(m.memo[key])


def _push(m: _Machine, value: Any) -> None:
    m.stack.append(value)


def _pop_n(m: _Machine, n: int) -> tuple[Any, ...]:
    items = [m.pop() for _ in range(n)]
    return tuple(reversed(items))


_HANDLERS: dict[str, Any] = {
    "PROTO": lambda m, a: None,
    "FRAME": lambda m, a: None,
    "MARK": lambda m, a: m.marks.append(len(m.stack)),
    "POP": lambda m, a: m.pop(),
    "POP_MARK": lambda m, a: m.pop_mark(),
    "DUP": lambda m, a: m.stack.append(m.top()),
    # plain values (genops has decoded the argument already)
    **{
        op: _push
        for op in (
            "INT",
            "BININT",
            "BININT1",
            "BININT2",
            "LONG",
            "LONG1",
            "LONG4",
            "FLOAT",
            "BINFLOAT",
            "UNICODE",
            "SHORT_BINUNICODE",
            "BINUNICODE",
            "BINUNICODE8",
            "SHORT_BINBYTES",
            "BINBYTES",
            "BINBYTES8",
        )
    },
    "BYTEARRAY8": lambda m, a: m.stack.append(bytearray(a)),
    "NONE": lambda m, a: m.stack.append(None),
    "NEWTRUE": lambda m, a: m.stack.append(True),
    "NEWFALSE": lambda m, a: m.stack.append(False),
    # containers
    "EMPTY_LIST": lambda m, a: m.stack.append([]),
    "EMPTY_TUPLE": lambda m, a: m.stack.append(()),
    "EMPTY_DICT": lambda m, a: m.stack.append({}),
    "EMPTY_SET": lambda m, a: m.stack.append(set()),
    "LIST": lambda m, a: m.stack.append(m.pop_mark()),
    "TUPLE": lambda m, a: m.stack.append(tuple(m.pop_mark())),
    "TUPLE1": lambda m, a: m.stack.append(_pop_n(m, 1)),
    "TUPLE2": lambda m, a: m.stack.append(_pop_n(m, 2)),
    "TUPLE3": lambda m, a: m.stack.append(_pop_n(m, 3)),
    "DICT": lambda m, a: _dict_from(m, m.pop_mark()),
    "APPEND": lambda m, a: _extend(m, [m.pop()]),
    "APPENDS": lambda m, a: _extend(m, m.pop_mark()),
    "SETITEM": lambda m, a: _setitems(m, list(_pop_n(m, 2))),
    "SETITEMS": lambda m, a: _setitems(m, m.pop_mark()),
    "ADDITEMS": lambda m, a: _add(m, m.pop_mark()),
    "FROZENSET": lambda m, a: _frozen(m, m.pop_mark()),
    # memo
    "PUT": _memo_put,
    "BINPUT": _memo_put,
    "LONG_BINPUT": _memo_put,
    "MEMOIZE": lambda m, a: _memo_put(m, len(m.memo)),
    "GET": _memo_get,
    "BINGET": _memo_get,
    "LONG_BINGET": _memo_get,
    # recognised names only; nothing is imported or called
    "GLOBAL": lambda m, a: _global(m, *[*str(a).split(" ", 1), ""][:2]),
    "STACK_GLOBAL": lambda m, a: _global(m, *_pop_n(m, 2)),
    "REDUCE": lambda m, a: m.stack.append(m.reduce(*_pop_n(m, 2))),
    "BUILD": lambda m, a: m.build(m.stack[-2] if len(m.stack) > 1 else None, m.pop()),
    "NEWOBJ": _newobj,
}


def _finish(value: Any, refuse: Any, path: tuple[int, ...] = ()) -> Any:
    """Replace placeholders by their values; refuse cycles and anything left unfinished."""
    if id(value) in path:
        raise refuse("a value that contains itself")
    inner = (*path, id(value))
    if isinstance(value, _ArrayBox):
        if value.array is None:
            raise refuse("an array that was never filled")
        return _finish(value.array, refuse, inner)
    if isinstance(value, (_DtypeBox, _Global)):
        raise refuse("a bare NumPy type or global as a value")
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            for idx, item in np.ndenumerate(value):
                value[idx] = _finish(item, refuse, inner)
        return value
    if isinstance(value, list):
        return [_finish(v, refuse, inner) for v in value]
    if isinstance(value, tuple):
        return tuple(_finish(v, refuse, inner) for v in value)
    if isinstance(value, dict):
        return {k: _finish(v, refuse, inner) for k, v in value.items()}
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def decode_pickle(data: bytes, where: str) -> Any:
    """Decode a Pickle stream of plain values and NumPy arrays without executing it.

    Parameters
    ----------
    data
        The bytes (e.g. one chunk after decompression).
    where
        What the bytes belong to (dataset and URL), named in errors.

    Raises
    ------
    PickleRefusedError
        The stream uses an opcode or a global outside the plain-data set, or is malformed.
    """
    try:
        return _Machine(where).run(bytes(data))
    except RecursionError:
        raise _Machine(where).refuse("values nested too deeply") from None


def decode_pickled_array(data: bytes, where: str) -> np.ndarray:
    """Decode the bytes ``numcodecs.Pickle`` wrote for one array (a Zarr chunk).

    Raises
    ------
    PickleRefusedError
        As :func:`decode_pickle`, or if the stream holds something other than an array.
    """
    value = decode_pickle(data, where)
    if not isinstance(value, np.ndarray):
        raise _Machine(where).refuse(f"a {type(value).__name__} where an array belongs")
    return value
