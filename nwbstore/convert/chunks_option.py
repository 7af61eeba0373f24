"""The ``chunks=`` option of a conversion (``--chunks`` on the command line), per dataset.

A chunk shape applies only to datasets of the same rank: ``--chunks 1000,16`` re-chunks every
2-D dataset and leaves 1-D ones as they are; give several shapes for several ranks
(``--chunks 1000 --chunks 1000,16``). A shape for one path (``--chunks
acquisition/ts/data=1000,16``) wins over the per-rank shapes, and must match that dataset's
rank. ``"auto"`` re-chunks every dataset with :func:`nwbstore.default_settings`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from nwbstore.errors import SettingsError
from nwbstore.nodes import Dataset, Group

__all__ = [
    "ChunksOption",
    "ChunksRule",
    "check_paths",
    "chunks_for",
    "parse_chunk_shape",
    "parse_chunks",
]


@dataclass(frozen=True)
class ChunksRule:
    """Chunk shapes by rank and by dataset path, or ``auto`` for every dataset.

    Attributes
    ----------
    by_rank
        Rank -> chunk shape, for every dataset of that rank without a path entry.
    by_path
        Dataset path (no leading ``/``) -> chunk shape.
    auto
        Re-chunk datasets that match neither with the default chunking.
    """

    by_rank: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    by_path: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    auto: bool = False


#: What ``convert(chunks=...)`` accepts: ``"auto"``, one shape (for datasets of its rank),
#: a mapping of path -> shape, or a :class:`ChunksRule`.
type ChunksOption = str | tuple[int, ...] | Mapping[str, tuple[int, ...]] | ChunksRule | None


def parse_chunk_shape(text: str, *, where: str = "--chunks") -> tuple[int, ...]:
    """``"1000,16"`` -> ``(1000, 16)``; every entry a positive integer.

    Raises
    ------
    SettingsError
        If an entry is not an integer or is not positive; the message names ``where``.
    """
    parts = [p.strip() for p in text.split(",")]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise SettingsError(
            f"{where} {text!r}: give comma-separated integers such as 1000,16"
        ) from None
    if not shape or any(n <= 0 for n in shape):
        raise SettingsError(f"{where} {text!r}: every chunk length must be a positive integer")
    return shape


def parse_chunks(values: Iterable[str]) -> ChunksRule | Literal["auto"] | None:
    """Combine ``--chunks`` values (``auto``, ``1000,16``, ``PATH=1000,16``) into one rule.

    Raises
    ------
    SettingsError
        For a malformed value, or two shapes for the same rank or path.
    """
    by_rank: dict[int, tuple[int, ...]] = {}
    by_path: dict[str, tuple[int, ...]] = {}
    auto = False
    values = list(values)
    for value in values:
        if value.strip() == "auto":
            auto = True
            continue
        path, sep, shape_text = value.rpartition("=")
        shape = parse_chunk_shape(shape_text if sep else value)
        if sep:
            key = path.strip().strip("/")
            if not key:
                raise SettingsError(f"--chunks {value!r}: give a dataset path before '='")
            if key in by_path:
                raise SettingsError(f"--chunks gives two shapes for {key!r}")
            by_path[key] = shape
        else:
            if len(shape) in by_rank:
                raise SettingsError(
                    f"--chunks gives two shapes for {len(shape)}-D datasets: "
                    f"{by_rank[len(shape)]} and {shape}"
                )
            by_rank[len(shape)] = shape
    if not values:
        return None
    if auto and not by_rank and not by_path:
        return "auto"
    return ChunksRule(by_rank=by_rank, by_path=by_path, auto=auto)


def _as_rule(option: ChunksOption) -> ChunksRule | None:
    if option is None:
        return None
    if isinstance(option, ChunksRule):
        return option
    if isinstance(option, str):
        if option != "auto":
            raise SettingsError(f"chunks={option!r}: give 'auto', a chunk shape or a mapping")
        return ChunksRule(auto=True)
    if isinstance(option, Mapping):
        return ChunksRule(by_path={str(k).strip("/"): tuple(v) for k, v in option.items()})
    shape = tuple(int(n) for n in option)
    return ChunksRule(by_rank={len(shape): shape})


def chunks_for(
    path: str, rank: int, option: ChunksOption
) -> tuple[int, ...] | Literal["auto"] | None:
    """The chunk shape ``option`` asks for the dataset ``path`` of rank ``rank``.

    Returns a shape, ``"auto"`` (re-chunk with the defaults), or ``None`` (keep the
    dataset's own chunking).

    Raises
    ------
    SettingsError
        If a shape given for ``path`` itself has another rank.
    """
    rule = _as_rule(option)
    if rule is None or rank == 0:
        return None
    key = path.strip("/")
    shape = rule.by_path.get(key)
    if shape is not None:
        if len(shape) != rank:
            raise SettingsError(
                f"chunks {shape} for dataset {key!r} have {len(shape)} axes but the dataset has "
                f"{rank}; give one length per axis (--chunks {key}=...)"
            )
        return shape
    shape = rule.by_rank.get(rank)
    if shape is not None:
        return shape
    return "auto" if rule.auto else None


def check_paths(option: ChunksOption, root: Group) -> None:
    """Refuse, before anything is written, path entries that name no dataset of ``root``
    or give it a chunk shape of another rank (the store is walked only if there are any).

    Raises
    ------
    SettingsError
        Naming the path and what to give instead.
    """
    rule = _as_rule(option)
    if rule is None or not rule.by_path:
        return
    ranks: dict[str, int] = {}

    def note(name: str, node: Group | Dataset) -> None:
        if isinstance(node, Dataset):
            ranks[name.strip("/")] = node.ndim

    root.visititems(note)
    for key in rule.by_path:
        if key not in ranks:
            raise SettingsError(
                f"--chunks {key}=...: {key!r} is not a dataset of {root.store.url} "
                "(list them with: nwbstore tree)"
            )
        chunks_for(key, ranks[key], rule)
