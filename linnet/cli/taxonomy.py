"""``linnet taxonomy stats|show|convert|download``: look at, convert and fetch category trees.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from linnet.errors import TaxonomyError


def _load(args: argparse.Namespace):
    from linnet.taxonomy import load_taxonomy  # lazy: keeps `linnet --help` fast

    options = {}
    if getattr(args, "primary_locale", None):
        options["primary_locale"] = args.primary_locale
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        taxonomy = load_taxonomy(args.files if len(args.files) > 1 else args.files[0], format=args.format, **options)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    return taxonomy


def _stats(args: argparse.Namespace) -> int:
    from linnet.taxonomy.stats import taxonomy_stats

    stats = taxonomy_stats(_load(args))
    if args.json:
        print(json.dumps(stats, indent=2, ensure_ascii=False))
        return 0
    print(f"nodes: {stats['nodes']}")
    print(f"roots: {stats['roots']}")
    print(f"leaves: {stats['leaves']}")
    print(f"levels: {stats['levels']}")
    if stats["version"]:
        print(f"version: {stats['version']}")
    if stats["locales"]:
        print(f"locales: {', '.join(stats['locales'])}")
    print("nodes per level:")
    for level, count in enumerate(stats["nodes_per_level"], start=1):
        print(f"  {level}: {count}")
    return 0


def _show(args: argparse.Namespace) -> int:
    taxonomy = _load(args)
    locale = args.locale
    if args.node is not None:
        node = taxonomy.node(args.node) if args.node in taxonomy else taxonomy.find_path(args.node, locale=locale)
        if node is None:
            raise TaxonomyError(f"no node with id or path {args.node!r}")
        level, index = taxonomy.class_index(node.id)
        print(f"id: {node.id}")
        print(f"name: {taxonomy.name(node.id, locale)}")
        print(f"path: {taxonomy.path_string(node.id, locale=locale)}")
        print(f"level: {level} (class index {index})")
        print(f"parent: {node.parent_id or '-'}")
        for other, name in node.names.items():
            print(f"name[{other}]: {name}")
        start = [node.id]
        base_level = level
    else:
        start = [root.id for root in taxonomy.roots]
        base_level = 1
    depth = args.depth
    lines = 0
    stack = list(reversed(start))
    while stack:
        current = stack.pop()
        level = taxonomy.node(current).level
        label = current if args.ids else ""
        print(f"{'  ' * (level - base_level)}{taxonomy.name(current, locale)}" + (f"  [{label}]" if label else ""))
        lines += 1
        if args.limit and lines >= args.limit:
            print(f"... (stopped after {args.limit} lines; use --limit 0 for all)")
            break
        if depth is None or level - base_level + 1 < depth:
            stack.extend(reversed(taxonomy.children(current)))
    return 0


def _convert(args: argparse.Namespace) -> int:
    from linnet.taxonomy.formats import write_google, write_paths, write_table

    taxonomy = _load(args)
    if args.depth:
        taxonomy = taxonomy.truncate(args.depth)
    target = args.to or _target_from_suffix(args.output)
    if target == "json":
        taxonomy.save(args.output)
    elif target == "table":
        write_table(taxonomy, args.output)
    elif target == "google":
        write_google(taxonomy, args.output, locale=args.locale)
    else:
        write_paths(taxonomy, args.output, locale=args.locale)
    print(f"wrote {len(taxonomy)} nodes to {args.output} ({target})", file=sys.stderr)
    return 0


def _target_from_suffix(path: str) -> str:
    lowered = path.lower()
    if lowered.endswith(".json"):
        return "json"
    if lowered.endswith((".csv", ".tsv")):
        return "table"
    return "paths"


def _download(args: argparse.Namespace) -> int:
    from linnet.taxonomy.download import download_taxonomies

    records = download_taxonomies(
        sources=args.source, cache_dir=args.cache_dir, locales=args.locales, base_url=args.base_url,
        ref=args.ref, force=args.force, timeout=args.timeout, progress=not args.quiet,
    )
    for record in records:
        print(f"{record['status']:>10}  {record['sha256'][:12] or '-':<12}  {record['path']}")
    failed = [record for record in records if record["status"] == "failed"]
    for record in failed:
        print(f"failed: {record['error']}", file=sys.stderr)
    return 1 if failed else 0


def _add_input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="taxonomy file(s); several Google/Shopify locale files of one version join by id")
    parser.add_argument("--format", choices=["google", "shopify", "json", "table", "paths"], default=None,
                        help="file format (sniffed by default)")
    parser.add_argument("--primary-locale", default=None, help="locale whose file defines the tree (default en-US/en)")


def register(subparsers) -> None:
    group = subparsers.add_parser("taxonomy", help="inspect, convert and download category trees")
    commands = group.add_subparsers(dest="taxonomy_command", metavar="SUBCOMMAND")
    commands.required = True

    stats = commands.add_parser("stats", help="nodes per level, roots, leaves, depth")
    _add_input(stats)
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=_stats)

    show = commands.add_parser("show", help="print the tree, or one node and its subtree")
    _add_input(show)
    show.add_argument("--node", default=None, help="node id or full path (' > ' separated)")
    show.add_argument("--depth", type=int, default=None, help="levels to print below the start")
    show.add_argument("--locale", default=None, help="print names in this locale")
    show.add_argument("--ids", action="store_true", help="print node ids")
    show.add_argument("--limit", type=int, default=200, help="stop after this many lines (0: no limit)")
    show.set_defaults(func=_show)

    convert = commands.add_parser("convert", help="write a tree as LinNét JSON, an id/parent/name table, "
                                                  "Google layout or a path list")
    _add_input(convert)
    convert.add_argument("--output", "-o", required=True, help="output file")
    convert.add_argument("--to", choices=["json", "table", "google", "paths"], default=None,
                         help="output format (default from the suffix: .json, .csv/.tsv, else paths)")
    convert.add_argument("--depth", type=int, default=None, help="keep levels 1..N")
    convert.add_argument("--locale", default=None, help="names in this locale (google/paths output)")
    convert.set_defaults(func=_convert)

    download = commands.add_parser("download", help="fetch the official Google and Shopify files into a cache")
    download.add_argument("--source", action="append", choices=["google", "shopify"], default=None,
                          help="which taxonomy (repeatable; default both)")
    download.add_argument("--locales", nargs="+", default=None, help="only these locales (default: all published)")
    download.add_argument("--cache-dir", default=None,
                          help="target folder (default $LINNET_CACHE_DIR/taxonomy or ~/.cache/linnet/taxonomy)")
    download.add_argument("--base-url", default=None, help="fetch <base-url>/<path> from a mirror instead of the official URLs")
    download.add_argument("--ref", default=None, help="Shopify git ref (release tag or branch; default main)")
    download.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    download.add_argument("--force", action="store_true", help="download again even when cached")
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    download.set_defaults(func=_download)
