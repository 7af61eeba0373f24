"""Where a conversion writes, and how the result takes its final name.

Nothing at the final path changes before the new result is whole:

- An HDF5 destination is written as ``<dst>.partial`` and renamed over ``<dst>`` at the end
  (:func:`os.replace`, atomic on one file system). On object storage it is written to a local
  temporary and uploaded at the end (:mod:`nwbstore.convert.upload`): the key appears whole.
- A Zarr destination that replaces an existing store (``overwrite``) is written to a hidden
  sibling ``.<name>.nwbstore-new``. Locally the old store is then renamed aside, the new one
  renamed in and the old one deleted. Object storage has no rename: the old prefix is
  deleted, the new objects are copied server-side into place -- root metadata last, so an
  interrupted copy never looks like a store -- and the temporary prefix is deleted.
- A Zarr destination that did not exist is written in place (it carries the incomplete mark
  until the end).

Sibling names keep relative external links valid: the temporary store has the same parent
as the final one, and links are rebased against the final URL anyway.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nwbstore.backends.registry import detect_backend, split_protocol
from nwbstore.convert.locations import exists, is_object_storage, remove, sibling_url
from nwbstore.convert.upload import local_temporary, upload_file

__all__ = [
    "Staging",
    "partial_url",
    "plan_staging",
    "publish",
    "replacement_url",
    "temporary_urls",
]

#: Zarr root metadata objects: copied last when a store is moved on object storage.
_ROOT_METADATA = ("zarr.json", ".zgroup", ".zattrs", ".zmetadata")


def partial_url(url: str) -> str:
    """Where an HDF5 destination is written until it is complete."""
    return url.rstrip("/") + ".partial"


def replacement_url(url: str) -> str:
    """Where a Zarr store that replaces the one at ``url`` is written until it is complete."""
    stripped = url.rstrip("/")
    name = stripped.rsplit("/", 1)[-1] if "://" in url else os.path.basename(stripped)
    return sibling_url(url, f".{name}.nwbstore-new")


@dataclass(frozen=True)
class Staging:
    """Where one conversion writes.

    Attributes
    ----------
    final
        The destination URL the caller asked for.
    where
        Where the store is written until it is complete (``final`` itself, or a sibling).
    format
        ``"hdf5"`` or ``"zarr"``.
    resume
        True if ``where`` holds an interrupted run to continue.
    upload
        True if ``where`` is a local file uploaded to ``final`` (HDF5 on object storage).
    """

    final: str
    where: str
    format: str
    resume: bool
    upload: bool = False

    @property
    def in_place(self) -> bool:
        return self.where == self.final


def temporary_urls(url: str) -> tuple[str, ...]:
    """Every location a conversion into ``url`` may write besides ``url`` itself."""
    extra = (local_temporary(url),) if is_object_storage(url) else ()
    return partial_url(url), replacement_url(url), *extra


def _format(url: str, fmt: str | None) -> str:
    return "hdf5" if detect_backend(url, "w", format=fmt).startswith("hdf5") else "zarr"


def plan_staging(
    dst: str,
    fmt: str | None,
    storage_options: Mapping[str, Any],
    *,
    overwrite: bool,
    resume: bool,
) -> Staging:
    """Decide where to write ``dst``; clears stale temporaries when ``overwrite`` (not resume).

    Deletes nothing at ``dst`` itself.
    """
    kind = _format(dst, fmt)
    if kind == "hdf5" and is_object_storage(dst):
        return _plan_upload(dst, overwrite=overwrite, resume=resume)
    if kind == "hdf5":
        part = partial_url(dst)
        there = exists(part, storage_options)
        if resume:
            return Staging(dst, part, kind, resume=there)
        if there:
            if not overwrite:
                from nwbstore.errors import StoreExistsError

                raise StoreExistsError(
                    f"{part} is left from an interrupted conversion into {dst}: pass --resume "
                    "(resume=True) to continue it, or --overwrite (overwrite=True) to start over"
                )
            remove(part, storage_options)
        return Staging(dst, part, kind, resume=False)
    new = replacement_url(dst)
    if resume:
        if exists(new, storage_options):  # an interrupted overwrite
            return Staging(dst, new, kind, resume=True)
        return Staging(dst, dst, kind, resume=exists(dst, storage_options))
    if overwrite:
        remove(new, storage_options)
        if exists(dst, storage_options):
            return Staging(dst, new, kind, resume=False)
    return Staging(dst, dst, kind, resume=False)


def _plan_upload(dst: str, *, overwrite: bool, resume: bool) -> Staging:
    """An HDF5 destination on object storage: a local temporary, uploaded at the end."""
    local = local_temporary(dst)
    there = os.path.exists(local)
    if there and not (resume or overwrite):
        from nwbstore.errors import StoreExistsError

        raise StoreExistsError(
            f"{local} is left from an interrupted conversion into {dst}: pass --resume "
            "(resume=True) to continue it, or --overwrite (overwrite=True) to start over"
        )
    if there and not resume:
        os.remove(local)
    return Staging(dst, local, "hdf5", resume=resume and there, upload=True)


def publish(
    staging: Staging,
    storage_options: Mapping[str, Any],
    *,
    concurrency: int | None = None,
    overwrite: bool = False,
) -> str:
    """Give the finished store at ``staging.where`` its final name, replacing an old one.

    Returns what was done when it is worth telling (an upload), else ``""``.
    """
    if staging.in_place:
        return ""
    src, dst = staging.where, staging.final
    if staging.upload:
        return upload_file(src, dst, storage_options, concurrency=concurrency, overwrite=overwrite)
    if split_protocol(dst)[0] == "file":
        _swap_local(split_protocol(src)[1], split_protocol(dst)[1])
    else:
        _move_remote(src, dst, storage_options)
    return ""


def _swap_local(new: str, final: str) -> None:
    if not os.path.lexists(final) or (os.path.isfile(final) and os.path.isfile(new)):
        os.replace(new, final)
        return
    old = os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.nwbstore-old")
    if os.path.lexists(old):
        _delete_local(old)
    os.replace(final, old)
    try:
        os.replace(new, final)
    except BaseException:
        os.replace(old, final)  # put the old store back
        raise
    _delete_local(old)


def _delete_local(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def _move_remote(new: str, final: str, storage_options: Mapping[str, Any]) -> None:
    import fsspec

    fs, new_path = fsspec.core.url_to_fs(new, **dict(storage_options))
    _, final_path = fsspec.core.url_to_fs(final, **dict(storage_options))
    new_path, final_path = new_path.rstrip("/"), final_path.rstrip("/")
    fs.invalidate_cache()  # listings cached while the store was written are stale
    keys = [k for k in fs.find(new_path) if k.startswith(new_path + "/")]
    relative = [k[len(new_path) + 1 :] for k in keys]
    if fs.exists(final_path):
        fs.rm(final_path, recursive=True)
    body = [r for r in relative if posixpath.basename(r) not in _ROOT_METADATA or "/" in r]
    last = [r for r in relative if r not in body]
    for group in (body, last):
        if group:
            fs.copy([f"{new_path}/{r}" for r in group], [f"{final_path}/{r}" for r in group])
    fs.rm(new_path, recursive=True)
    fs.invalidate_cache()
