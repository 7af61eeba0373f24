"""hdmf-zarr's ``NWBZarrIO`` over a zarr group nwbstore opened, without its costly habits.

hdmf-zarr 0.14 takes a zarr ``Store`` instance as ``path`` and then

- opens it again with ``zarr.open(store, mode="w")``, which *clears* the store: on object
  storage that is a LIST and a batch DELETE of the root document nwbstore just claimed, and a
  second claim of the root afterwards;
- opens it again for reading (``zarr.open_consolidated``: one more GET of the root document);
- consolidates metadata twice at the end of ``write`` (nwbstore's store does it once, when it
  is closed);
- computes the source of a link to a dataset of another local store from
  ``os.path.abspath(str(store))`` (``file:///...`` read as a relative path);
- resolves the external link of a store on object storage by appending its source to the
  store's URL (``s3://b/new.nwb.zarr`` + ``/old.nwb.zarr``): no such link can be followed.

:class:`StoreNWBZarrIO` hands hdmf-zarr the group nwbstore opened (``_open_file`` and
``_open_file_consolidated`` for that store only; other files, such as the targets of external
links, still open as hdmf-zarr does), leaves consolidation to nwbstore, so every object
written goes to storage once, by nwbstore's write path, and rebases such link sources. On
object storage the sources it writes are relative to the store (``../old.nwb.zarr``: nwbstore's
stores name themselves by URL), and it follows them by opening the target with
:func:`nwbstore.open` and the same storage options.
"""

from __future__ import annotations

import json
import os
import posixpath
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import zarr
from hdmf.build import BuildManager
from hdmf_zarr import NWBZarrIO
from hdmf_zarr.utils import get_store_path

__all__ = [
    "StoreNWBZarrIO",
    "consolidate",
    "nwb_manager",
    "quiet_consolidation",
    "source_url",
]

#: Namespaces pynwb ships; their cached copies need not be read from the file.
_BUILTIN_NAMESPACES = frozenset({"core", "hdmf-common", "hdmf-experimental"})


class StoreNWBZarrIO(NWBZarrIO):
    """``NWBZarrIO`` over ``group`` (the root group of a store nwbstore opened).

    Parameters
    ----------
    group
        The root ``zarr.Group`` (``Store.zarr_group`` of an nwbstore Zarr store).
    mode
        ``"w"`` to write a new file into the (empty) store, ``"r"`` or ``"r+"``/``"a"``.
    manager
        The ``BuildManager`` to use (one shared with the io that read linked containers, or
        one from :func:`nwb_manager`).
    url
        The store's URL; on object storage external links are followed from it.
    storage_options
        fsspec options to open the targets of external links with.
    """

    def __init__(
        self,
        group: zarr.Group,
        mode: str,
        manager: BuildManager,
        *,
        url: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._nwbstore_group = group
        self._nwbstore_url = url
        self._link_options = dict(storage_options or {})
        self._link_targets: dict[str, Any] = {}  # URL -> nwbstore store opened for a link
        super().__init__(path=group.store, mode=mode, manager=manager, load_namespaces=False)

    def _own(self, store: Any) -> bool:
        return store is self._nwbstore_group.store or store is self.path

    def _open_file(self, store: Any, mode: str, storage_options: Any = None) -> Any:
        if self._own(store):
            return self._nwbstore_group
        return super()._open_file(store, mode, storage_options)

    def _open_file_consolidated(self, store: Any, mode: str, storage_options: Any = None) -> Any:
        if self._own(store):
            return self._nwbstore_group
        return super()._open_file_consolidated(store, mode, storage_options)

    def __add_link__(self, parent: Any, target_source: Any, target_path: str, name: str) -> None:
        if isinstance(target_source, str):
            target_source = self._link_source(target_source)
        super().__add_link__(parent, target_source, target_path, name)

    def _link_source(self, source: str) -> str:
        """The link source relative to this store's folder, as hdmf-zarr resolves it.

        For a dataset of another store, hdmf-zarr 0.14 computes the source relative to
        ``os.path.abspath(str(store))``, which for a ``LocalStore`` is ``file:///...`` taken as
        a relative path; links to containers are computed from the real folder. The source is
        rebased when the wrong folder's reading finds the target.
        """
        if source == "." or os.path.isabs(source) or "://" in source:
            return source
        real = get_store_path(self.path)
        if not os.path.isabs(real):
            return source
        target = os.path.normpath(os.path.join(os.path.abspath(str(self.path)), source))
        if os.path.exists(target):  # computed from the wrong folder
            return os.path.relpath(target, real)
        return source

    # -- following links of a store on object storage --------------------------------------

    def resolve_ref(self, zarr_ref: Any) -> tuple[str, Any]:
        """The target of a link or reference; external ones of a remote store by URL."""
        ref = _as_reference(zarr_ref)
        url = self._nwbstore_url
        source = ref.get("source") if ref is not None else None
        if ref is None or source in (None, ".") or url is None or "://" not in url:
            return super().resolve_ref(zarr_ref)
        target = source_url(url, str(source))
        group = self._open_target(target)
        path = str(ref.get("path") or "").strip("/")
        try:
            obj = group[path] if path else group
        except KeyError:
            raise ValueError(
                f"found a bad link to /{path} in {target} (linked from {url})"
            ) from None
        return (posixpath.basename(path) if path else "root"), obj

    def _open_target(self, url: str) -> zarr.Group:
        import nwbstore

        store: Any = self._link_targets.get(url)
        if store is None:
            store = nwbstore.open(url, "r", format="zarr", storage_options=self._link_options)
            self._link_targets[url] = store
        group: zarr.Group = store.zarr_group
        return group

    def close(self, *args: Any, **kwargs: Any) -> None:
        super().close(*args, **kwargs)
        targets, self._link_targets = self._link_targets, {}
        for store in targets.values():
            store.close()


def _as_reference(zarr_ref: Any) -> dict[str, Any] | None:
    """A link or reference as ``{"source", "path"}`` (hdmf-zarr's accepted forms), or None."""
    if isinstance(zarr_ref, np.ndarray) and zarr_ref.ndim == 0:
        zarr_ref = zarr_ref[()]
    if isinstance(zarr_ref, str):
        try:
            zarr_ref = json.loads(zarr_ref)
        except json.JSONDecodeError:
            return {"source": ".", "path": zarr_ref}
    return dict(zarr_ref) if isinstance(zarr_ref, Mapping) else None


def source_url(store_url: str, source: str) -> str:
    """The URL a link ``source`` of the store at ``store_url`` points to.

    Sources are relative to the linking store itself (hdmf-zarr's convention):
    ``source_url("s3://b/new.nwb.zarr", "../old.nwb.zarr") == "s3://b/old.nwb.zarr"``.
    An absolute URL is returned as it is.
    """
    if "://" in source:
        return source
    scheme, _, rest = store_url.partition("://")
    target = posixpath.normpath(posixpath.join(rest.rstrip("/"), source))
    if target.startswith(".."):
        raise ValueError(f"link source {source!r} of {store_url} leads outside its bucket")
    return f"{scheme}://{target}"


def nwb_manager(group: zarr.Group | None) -> BuildManager:
    """A ``BuildManager`` with pynwb's types and the extensions cached in ``group``.

    Only namespaces pynwb does not ship are read from the file's cached specifications
    (reading ``core`` again costs a GET per specification document and changes nothing for
    the types pynwb knows).
    """
    from pynwb import get_manager, get_type_map

    if group is None:
        return get_manager()
    spec_loc = group.attrs.get(".specloc")
    if isinstance(spec_loc, dict):  # a reference written as {"_REFERENCE": {...}}
        spec_loc = spec_loc.get("_REFERENCE", {}).get("path")
    if not isinstance(spec_loc, str) or spec_loc.strip("/") not in group:
        return get_manager()
    cached = group[spec_loc.strip("/")]
    assert isinstance(cached, zarr.Group)
    extra = [ns for ns in cached.group_keys() if ns not in _BUILTIN_NAMESPACES]
    if not extra:
        return get_manager()
    type_map = get_type_map()
    NWBZarrIO.load_namespaces(type_map, file=group, namespaces=extra)
    return BuildManager(type_map)


@contextmanager
def quiet_consolidation() -> Iterator[None]:
    """Keep zarr's warning that consolidated metadata is not in the Zarr v3 specification.

    hdmf-zarr 0.14 relies on consolidated metadata (and so does nwbstore's one-request open):
    the warning says nothing users can act on.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        yield


def consolidate(group: zarr.Group) -> None:
    """Rewrite the consolidated metadata of ``group``'s store (after hdmf-zarr wrote to it)."""
    with quiet_consolidation():
        zarr.consolidate_metadata(group.store, zarr_format=group.metadata.zarr_format)
