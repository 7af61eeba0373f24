"""The ``nwbstore`` command line: ``info``, ``tree``, ``config``, ``demo`` (and more to come)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from nwbstore.errors import NwbStoreError

__all__ = ["main"]


def _storage_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = json.loads(args.storage_options) if args.storage_options else {}
    if args.endpoint_url:
        opts["endpoint_url"] = args.endpoint_url
    return opts


def _open(args: argparse.Namespace) -> Any:
    import nwbstore

    return nwbstore.open(args.url, "r", format=args.format, storage_options=_storage_options(args))


def _cmd_info(args: argparse.Namespace) -> int:
    from nwbstore.nodes import Dataset, Group

    with _open(args) as store:
        groups = datasets = 0
        nbytes = 0

        def count(_name: str, node: Group | Dataset) -> None:
            nonlocal groups, datasets, nbytes
            if isinstance(node, Dataset):
                datasets += 1
                nbytes += node.nbytes
            else:
                groups += 1

        store.root.visititems(count)
        links = len(_iter_links(store.root))
        print(f"url:       {store.url}")
        print(f"backend:   {store.backend}")
        print(f"groups:    {groups + 1}")
        print(f"datasets:  {datasets}")
        print(f"links:     {links}")
        print(f"data size: {nbytes / 1e6:.2f} MB (uncompressed)")
        attrs = store.root.attrs
        for key in ("nwb_version", "identifier", "session_description"):
            if key in attrs:
                print(f"{key}: {attrs[key]}")
    return 0


def _iter_links(group: Any) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    group.visit_links(lambda name, link: found.append((name, link)))
    return found


def _cmd_tree(args: argparse.Namespace) -> int:
    from nwbstore.nodes import Group
    from nwbstore.tree import format_tree

    with _open(args) as store:
        node = store[args.path] if args.path else store.root
        if not isinstance(node, Group):
            print(f"{node.name}  {node.shape} {node.dtype}")
        else:
            print(format_tree(node, settings=not args.no_settings))
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from nwbstore.describe import describe_settings

    with _open(args) as store:
        print(describe_settings(store))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from nwbstore.demo import run_demo

    run_demo(args.workdir)
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nwbstore", description="Inspect and convert NWB files in HDF5 and Zarr."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add_source(p: argparse.ArgumentParser) -> None:
        p.add_argument("url", help="path or URL (s3://..., https://..., memory://...)")
        p.add_argument("--format", choices=["hdf5", "zarr"], help="skip format detection")
        p.add_argument("--endpoint-url", help="S3 endpoint (else AWS_ENDPOINT_URL)")
        p.add_argument("--storage-options", help="JSON dict of fsspec/s3fs options")

    p = sub.add_parser("info", help="summary of a file or store")
    add_source(p)
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("tree", help="groups, datasets and links with their settings")
    add_source(p)
    p.add_argument("--path", help="start at this group")
    p.add_argument("--no-settings", action="store_true", help="hide chunking and codecs")
    p.set_defaults(func=_cmd_tree)

    p = sub.add_parser("config", help="chunking, buffering and compression of every dataset")
    add_source(p)
    p.set_defaults(func=_cmd_config)

    p = sub.add_parser("demo", help="run the embedded example")
    p.add_argument("--workdir", help="where to write the example files (default: a temp dir)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except NwbStoreError as err:
        print(f"nwbstore {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
