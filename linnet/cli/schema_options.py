"""The schema flags every catalog-reading command takes (``train``, ``evaluate``, ``predict``, ``embed``, ...).

``--schema schema.yaml`` gives all keys at once; each flag given on the command line overrides its key.
Commands that have a saved schema (a run directory's ``schema.yaml``) pass it as ``default``.
This module does not import TensorFlow.
"""

from __future__ import annotations

import argparse

from linnet.data.schema import CatalogSchema

# flag destination -> schema key
_FLAG_KEYS = {
    "id_column": "id_column",
    "text_columns": "text_columns",
    "attribute_columns": "attribute_columns",
    "category_column": "category_column",
    "path_separator": "path_separator",
    "level_columns": "level_columns",
    "category_kind": "category_kind",
    "category_locale": "category_locale",
    "image_column": "image_column",
    "image_root": "image_root",
    "value_column": "value_column",
    "allow_images_outside_root": "allow_images_outside_root",
}


def _column_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {text!r}")
    return names


def add_schema_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Adds the catalog schema flags to ``parser`` (all default to None: "not given").

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> _ = add_schema_options(parser)
        >>> schema_from_args(parser.parse_args(["--text-columns", "title,brand", "--level-columns", "a,b"])).level_columns
        ['a', 'b']
    """
    group = parser.add_argument_group("catalog schema", "which column plays which role (or --schema FILE)")
    group.add_argument("--schema", metavar="FILE", help="schema YAML with the keys below; flags override it")
    group.add_argument("--id-column", metavar="NAME", help="unique product id column (default: id)")
    group.add_argument("--text-columns", type=_column_list, metavar="A,B,C",
                       help="text columns in order (default: title)")
    group.add_argument("--attribute-columns", type=_column_list, metavar="X,Y",
                       help="columns rendered as 'key: value; ...' text (a column may hold JSON or 'k: v; k: v')")
    group.add_argument("--category-column", metavar="NAME", help="category path (or id) column")
    group.add_argument("--path-separator", metavar="SEP", help="level separator of --category-column (default: ' > ')")
    group.add_argument("--level-columns", type=_column_list, metavar="L1,L2,L3", help="one category column per level")
    group.add_argument("--category-kind", choices=["path", "id"],
                       help="--category-column holds name paths (default) or taxonomy node ids")
    group.add_argument("--category-locale", metavar="LOCALE", help="match category names in this taxonomy locale")
    group.add_argument("--image-column", metavar="NAME", help="image path (relative to --image-root), URL or bytes")
    group.add_argument("--image-root", metavar="DIR", help="directory of relative image paths and fetched URLs")
    group.add_argument("--value-column", metavar="NAME", help="per-product business value (used by evaluation)")
    group.add_argument("--allow-images-outside-root", action="store_true", default=None,
                       help="read image paths that resolve outside --image-root (refused by default; "
                            "docs/security.md)")
    return group


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--batch-size 0`` is refused with a message, not a traceback)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_bad_row_options(parser: argparse.ArgumentParser) -> None:
    """``--errors-file`` and ``--max-bad-rows``: skip bad catalog rows, record them, fail past a threshold
    (`linnet.data.prepare_catalog`'s ``errors_path`` and ``max_bad_rows``)."""
    parser.add_argument("--errors-file", metavar="FILE",
                        help="keep going past bad rows and write them here (JSON Lines: file, line, id, field, problem)")
    parser.add_argument("--max-bad-rows", type=_non_negative_int, metavar="N",
                        help="skip bad rows, but stop once more than N are bad (default: no limit with --errors-file)")


def schema_from_args(args: argparse.Namespace, default: CatalogSchema | None = None) -> CatalogSchema:
    """The schema named by ``--schema`` (else ``default``, else the defaults), with given flags applied.

    Giving ``--level-columns`` clears a ``category_column`` from the file or default, and vice versa.

    Raises:
        ConfigError: for a missing or malformed schema file, or conflicting keys.
    """
    if getattr(args, "schema", None):
        data = CatalogSchema.from_yaml(args.schema).to_dict()
    elif default is not None:
        data = default.to_dict()
    else:
        data = {}
    overrides = {key: getattr(args, flag) for flag, key in _FLAG_KEYS.items() if getattr(args, flag, None) is not None}
    if "level_columns" in overrides:
        data["category_column"] = None
    if "category_column" in overrides:
        data["level_columns"] = None
    data.update(overrides)
    return CatalogSchema.from_dict(data, where=getattr(args, "schema", None) or "schema flags")


def schema_or_none(args: argparse.Namespace) -> CatalogSchema | None:
    """The schema from the flags when any schema flag (or ``--schema``) is given, else None: the command then
    uses the model's saved schema."""
    given = getattr(args, "schema", None) is not None or any(
        getattr(args, flag, None) is not None for flag in _FLAG_KEYS)
    return schema_from_args(args) if given else None


def export_schema_from_args(args: argparse.Namespace) -> CatalogSchema:
    """The schema of the export ``args.model`` (read from its assets, without TensorFlow) with the given schema
    flags applied: ``--image-root`` alone keeps the export's text columns."""
    from linnet.engines.signature_batches import describe  # lazy: only the engine commands read an export's assets

    return schema_from_args(args, default=describe(args.model).schema)
