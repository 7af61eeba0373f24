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

from nwbstore.testing._bypass import Bypass, HDF5Bypass, ZarrBypass
from nwbstore.testing._conformance_base import Target
from nwbstore.testing._conformance_links import LinkConformance
from nwbstore.testing._conformance_read import ReadConformance
from nwbstore.testing._conformance_write import WriteConformance
from nwbstore.testing._reference_content import (
    REFERENCE_ATTRS,
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


class StoreConformance(ReadConformance, WriteConformance, LinkConformance):
    """Conformance tests for one backend (subclass it; see the module docstring).

    The tests come in three groups, each a module of its own: reading
    (``_conformance_read``), writing groups, datasets, attributes and modes
    (``_conformance_write``), and links and references (``_conformance_links``). The hooks,
    fixtures and class attributes they share are in ``_conformance_base``.
    """
