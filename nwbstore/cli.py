"""The ``nwbstore`` command line: info, tree, config, convert, verify, links, truncate, index,
demo."""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import sys
from collections.abc import Sequence
from typing import Any

from nwbstore.cli_types import (
    byte_size,
    chunks_value,
    compression_value,
    json_options,
    positive_int,
)
from nwbstore.convert.chunks_option import parse_chunks
from nwbstore.errors import NwbStoreError

__all__ = ["main"]


def _storage_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = dict(args.storage_options or {})
    if args.endpoint_url:
        opts["endpoint_url"] = args.endpoint_url
    return opts


def _open(args: argparse.Namespace) -> Any:
    import nwbstore

    return nwbstore.open(
        args.url,
        "r",
        format=args.format,
        storage_options=_storage_options(args),
        allow_pickle=getattr(args, "allow_pickle", False),
        memb_size=args.memb_size,
        allow_incomplete=args.allow_incomplete,
    )


def _cmd_info(args: argparse.Namespace) -> int:
    from nwbstore.defaults import human_bytes
    from nwbstore.nodes import Dataset
    from nwbstore.summary import summarize

    with _open(args) as store:
        summary = summarize(store.root)
        print(f"url:       {store.url}")
        zarr_format = getattr(store, "zarr_format", None)
        print(
            f"backend:   {store.backend}" + (f" (Zarr format {zarr_format})" if zarr_format else "")
        )
        print(f"groups:    {summary.groups}")  # below the root, as h5py and verify count
        print(f"datasets:  {summary.datasets}")
        print(
            f"links:     {summary.links} ({summary.soft_links} soft, "
            f"{summary.external_links} external)"
        )
        print(f"data size: {human_bytes(summary.nbytes)} (uncompressed)")
        if summary.pickled:
            n = len(summary.pickled)
            print(
                f"{n} dataset{' uses' if n == 1 else 's use'} the Pickle codec "
                f"(not read; pass --allow-pickle): {', '.join(summary.pickled)}"
            )
        if "nwb_version" in store.root.attrs:
            print(f"nwb_version: {store.root.attrs['nwb_version']}")
        for key in ("identifier", "session_description"):
            node = store.root.get(key) if f"/{key}" not in summary.pickled else None
            if isinstance(node, Dataset) and node.ndim == 0:
                print(f"{key}: {node[()]}")
        _print_non_portable(store)
    return 0


def _print_non_portable(store: Any) -> None:
    """The ``info`` section listing codecs not every reader of the format decodes."""
    from nwbstore.portability import non_portable_codecs

    rule, found = non_portable_codecs(store)
    if not found:
        print(f"codecs:    portable ({rule})")
        return
    print(f"non-portable codecs ({len(found)} dataset(s); portable means {rule}):")
    for path, names in found:
        print(f"  {path}: {', '.join(names)}")


def _cmd_tree(args: argparse.Namespace) -> int:
    from nwbstore.nodes import Group
    from nwbstore.tree import dtype_label, iter_tree

    with _open(args) as store:
        node = store[args.path] if args.path else store.root
        if not isinstance(node, Group):
            print(f"{node.name}  {node.shape} {dtype_label(node)}")
            return 0
        for line in iter_tree(node, settings=not args.no_settings):  # streamed: `| head` is quick
            print(line)
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from nwbstore.describe import describe_settings

    with _open(args) as store:
        print(describe_settings(store))
        file_format = "zarr" if store.backend.startswith("zarr") else "hdf5"
    if args.backend:
        from nwbstore.nwb._config_cli import describe_default_configuration

        print(
            describe_default_configuration(
                args.url,
                args.backend,
                file_format=file_format,
                storage_options=_storage_options(args),
                memb_size=args.memb_size,
                zarr_format=args.zarr_format,
            )
        )
    return 0


def _cmd_convert(args: argparse.Namespace, *, first_n: int | None = None) -> int:
    from nwbstore.convert import convert

    opts = _storage_options(args)
    report = convert(
        args.src,
        args.dst,
        links=args.links,
        compression=args.compression,
        chunks=parse_chunks(args.chunks or ()),
        fallback=args.fallback,
        strict=args.strict,
        codecs="portable" if args.portable else None,
        zarr_format=args.zarr_format,
        format=args.format,
        jobs=args.jobs,
        scheduler=args.scheduler,
        progress=not args.quiet,
        storage_options=opts,
        overwrite=args.overwrite,
        resume=args.resume,
        raw=not args.no_raw,
        first_n=first_n,
        allow_pickle=args.allow_pickle,
        source_memb_size=args.memb_size,
        allow_incomplete_source=args.allow_incomplete,
        concurrency=args.concurrency,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif not args.quiet:
        print(report)
    if args.verify and first_n is None:
        result = _verify(args, opts)
        print(result)
        if not result.ok:
            from nwbstore.convert.marker import mark_incomplete

            mark_incomplete(args.dst, opts, f"verify found {len(result.differences)} differences")
            print(
                f"nwbstore {args.command}: verification failed: {args.dst} is marked incomplete "
                "(convert again with --overwrite; inspect it with --allow-incomplete)",
                file=sys.stderr,
            )
            return 1
    if args.verify and first_n is not None:
        print("nwbstore truncate: --verify compares whole copies; skipped", file=sys.stderr)
    return 0


def _rows(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"-n {text!r}: give a whole number of rows, 0 or more")
    return value


def _cmd_truncate(args: argparse.Namespace) -> int:
    return _cmd_convert(args, first_n=args.n)


def _verify(args: argparse.Namespace, opts: dict[str, Any]) -> Any:
    import nwbstore

    def family_size(url: str) -> int | None:  # --memb-size applies to %d family patterns only
        return args.memb_size if "%" in os.path.basename(url) else None

    allow_incomplete = getattr(args, "allow_incomplete", False)
    with (
        nwbstore.open(
            args.src,
            "r",
            storage_options=opts,
            allow_pickle=args.allow_pickle,
            memb_size=family_size(args.src),
            allow_incomplete=allow_incomplete,
        ) as source,
        nwbstore.open(
            args.dst,
            "r",
            storage_options=opts,
            memb_size=family_size(args.dst),
            allow_incomplete=allow_incomplete,
        ) as dest,
    ):
        return nwbstore.verify(source, dest, storage_options=opts, links=args.links)


def _cmd_verify(args: argparse.Namespace) -> int:
    result = _verify(args, _storage_options(args))
    print(result)
    return 0 if result.ok else 1


def _cmd_links(args: argparse.Namespace) -> int:
    from nwbstore.linkcheck import check_links

    with _open(args) as store:
        entries = check_links(store, storage_options=_storage_options(args))
    for entry in entries:
        print(entry)
    broken = sum(not e.ok for e in entries)
    print(f"{len(entries)} links and references, {broken} broken")
    return 1 if broken else 0


def _cmd_index(args: argparse.Namespace) -> int:
    from nwbstore.catalog import index

    report = index(args.url, output=args.output, storage_options=_storage_options(args))
    print(report)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from nwbstore.demo import run_demo

    run_demo(args.workdir)
    return 0


_ALLOW_PICKLE_HELP = (
    "read legacy Pickle-encoded source arrays (hdmf-zarr <= 0.13) with nwbstore's decoder: "
    "plain values only, no code run; use only for sources you trust"
)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nwbstore",
        description="Inspect and convert NWB files in HDF5 and Zarr.",
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add_remote(p: argparse.ArgumentParser) -> None:
        p.add_argument("--endpoint-url", help="S3 endpoint (else AWS_ENDPOINT_URL)")
        p.add_argument(
            "--storage-options", type=json_options, help="JSON object of fsspec/s3fs options"
        )

    def add_reading(p: argparse.ArgumentParser, of: str = "an input") -> None:
        p.add_argument(
            "--memb-size",
            type=byte_size,
            help=f"member size of {of} that is an HDF5 family (raw_%%d.h5), e.g. 2GiB; "
            "read from the file when omitted",
        )
        p.add_argument(
            "--allow-incomplete",
            action="store_true",
            help=f"read {of} marked incomplete (an unfinished or failed conversion)",
        )

    def add_source(p: argparse.ArgumentParser) -> None:
        p.add_argument("url", help="path or URL (s3://..., https://..., memory://...)")
        p.add_argument("--format", choices=["hdf5", "zarr"], help="skip format detection")
        add_reading(p)
        add_remote(p)

    p = sub.add_parser("info", help="summary of a file or store")
    add_source(p)
    p.add_argument("--allow-pickle", action="store_true", help=_ALLOW_PICKLE_HELP)
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("tree", help="groups, datasets and links with their settings")
    add_source(p)
    p.add_argument("--path", help="start at this group")
    p.add_argument("--no-settings", action="store_true", help="hide chunking and codecs")
    p.add_argument("--allow-pickle", action="store_true", help=_ALLOW_PICKLE_HELP)
    p.set_defaults(func=_cmd_tree)

    p = sub.add_parser("config", help="chunking, buffering and compression of every dataset")
    add_source(p)
    p.add_argument("--allow-pickle", action="store_true", help=_ALLOW_PICKLE_HELP)
    p.add_argument(
        "--backend",
        choices=["hdf5", "zarr"],
        help="also print the default backend configuration the NWB file would get on this "
        "backend (read with pynwb / hdmf-zarr; as nwbstore.nwb.get_default_backend_configuration)",
    )
    p.add_argument(
        "--zarr-format",
        type=int,
        choices=[2, 3],
        default=3,
        help="Zarr format for --backend zarr (shards only for 3)",
    )
    p.set_defaults(func=_cmd_config)

    def add_convert_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("src", help="source path or URL")
        p.add_argument("dst", help="destination path or URL (.nwb/.h5 HDF5, .zarr Zarr)")
        p.add_argument("--format", choices=["hdf5", "zarr"], help="destination format")
        p.add_argument("--zarr-format", type=int, choices=[2, 3], default=3)
        p.add_argument("--links", choices=["keep", "resolve"], default="keep")
        p.add_argument(
            "--compression",
            type=compression_value,
            help="codec for every dataset, e.g. zstd:5 or gzip:4",
        )
        p.add_argument(
            "--chunks",
            type=chunks_value,
            action="append",
            help="'auto', a chunk shape such as 1000,16 (applied to datasets of that rank "
            "only), or PATH=1000,16 for one dataset; repeatable",
        )
        p.add_argument("--fallback", help="codec to use where one has no counterpart, or 'drop'")
        p.add_argument(
            "--strict",
            action="store_true",
            help="refuse codecs with no counterpart instead of transcoding them (see docs)",
        )
        p.add_argument(
            "--portable",
            action="store_true",
            help="write only codecs every reader decodes (Zarr v3 core codecs; Zarr v2 "
            "standard compressors, no filters; HDF5 built-in filters)",
        )
        p.add_argument("--jobs", type=positive_int("--jobs"), help="worker threads")
        p.add_argument("--scheduler", help="Dask distributed scheduler address")
        p.add_argument(
            "--concurrency",
            type=positive_int("--concurrency"),
            help="requests in flight when writing to object storage (chunk uploads; parts of "
            "an HDF5 upload)",
        )
        p.add_argument("--overwrite", action="store_true", help="replace an existing destination")
        p.add_argument("--resume", action="store_true", help="continue an interrupted run")
        p.add_argument("--no-raw", action="store_true", help="always decode and re-encode")
        p.add_argument("--verify", action="store_true", help="verify the result afterwards")
        p.add_argument("--json", action="store_true", help="print the report as JSON")
        p.add_argument("--allow-pickle", action="store_true", help=_ALLOW_PICKLE_HELP)
        p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or report")
        add_reading(p, of="a source")
        add_remote(p)

    p = sub.add_parser("convert", help="convert between HDF5 and Zarr (any to any)")
    add_convert_options(p)
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser(
        "truncate",
        help="small, consistent copy: the first N rows of each table, N samples of each series",
    )
    add_convert_options(p)
    p.add_argument(
        "-n",
        type=_rows,
        required=True,
        help="rows of each table and samples of each time series to keep (regions, indexes "
        "and electrodes stay consistent)",
    )
    p.set_defaults(func=_cmd_truncate)

    p = sub.add_parser("verify", help="compare two stores; exit 1 on a difference")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--links", choices=["keep", "resolve"], default="keep")
    p.add_argument("--allow-pickle", action="store_true", help=_ALLOW_PICKLE_HELP)
    add_reading(p)
    add_remote(p)
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("links", help="list links and references; exit 1 if any is broken")
    add_source(p)
    p.set_defaults(func=_cmd_links)

    p = sub.add_parser(
        "index",
        help="write the metadata catalog of a remote HDF5 file (URL.nwbcat) for fast opens",
    )
    p.add_argument("url", help="an HDF5 file on S3 or HTTPS (s3://bucket/session.nwb)")
    p.add_argument(
        "--output", "-o", help="where to write the catalog (path or URL; default: URL.nwbcat)"
    )
    add_remote(p)
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("demo", help="run the embedded example")
    p.add_argument("--workdir", help="where to write the example files (default: a temp dir)")
    p.set_defaults(func=_cmd_demo)
    return parser


_EXIT_CODES = """exit status:
  0    success (verify, links: no difference, nothing broken)
  1    verify found differences, links found broken links, or a --verify failed
  2    bad input or usage: a missing, damaged or unreadable file or store, an S3 error,
       a bad option value
  130  interrupted (Ctrl-C)"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 differences, 2 bad input)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    command = f"nwbstore {args.command}"
    try:
        return int(args.func(args))
    except NwbStoreError as err:
        print(f"{command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as err:
        if isinstance(err, BrokenPipeError) and _stdout_closed():
            return 0  # `nwbstore tree x | head`: the reader has all it wanted
        if os.environ.get("NWBSTORE_TRACEBACK"):
            raise
        if isinstance(err, OSError) and err.errno is not None:  # the file system refused
            print(f"{command}: error: {_one_line(err)}", file=sys.stderr)
        else:
            print(
                f"{command}: error: {type(err).__name__}: {_one_line(err)} "
                "(set NWBSTORE_TRACEBACK=1 to see where)",
                file=sys.stderr,
            )
        return 2
    except KeyboardInterrupt:
        from nwbstore.convert.resuming import resume_hint

        hint = resume_hint(None, args.dst) if hasattr(args, "dst") else "interrupted"
        print(f"{command}: {hint}", file=sys.stderr)
        return 130


def _one_line(err: BaseException) -> str:
    """The message on one line, without the ``user:password@`` of any URL in it."""
    text = " ".join(str(err).split()) or type(err).__name__
    return re.sub(r"(\w+://)[^/@\s\"']+@", r"\1", text)


def _stdout_closed() -> bool:
    """True if stdout's reader went away; stdout is then pointed at devnull, so the
    interpreter's final flush stays quiet (as the Python docs on SIGPIPE recommend)."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):
        return False  # stdout without a file descriptor: the broken pipe was another one
    try:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        broken = any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (AttributeError, OSError):  # no poll() on this platform: trust the exception
        broken = True
    if broken:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
    return broken


if __name__ == "__main__":
    sys.exit(main())
