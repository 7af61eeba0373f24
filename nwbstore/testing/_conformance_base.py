"""The conformance suite's base: one test's :class:`Target`, the backend hooks and fixtures."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

import nwbstore
from nwbstore.nodes import Store
from nwbstore.testing._bypass import Bypass
from nwbstore.testing._reference_content import write_reference_content

__all__ = ["ConformanceBase", "Target"]


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


class ConformanceBase:
    """Hooks, fixtures and helpers the conformance test groups share (see ``conformance``)."""

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
