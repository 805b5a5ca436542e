"""``linnet embed``, ``linnet neighbours build|query``, ``linnet match`` and ``linnet projector``.

TensorFlow and the embeddings library are imported inside the commands, not at parser build time.
"""

from __future__ import annotations

import argparse
import csv
import tempfile

from linnet.atomic_files import atomic_path
from linnet.cli.schema_options import add_schema_options, positive_int, schema_from_args
from linnet.errors import ConfigError, EmbeddingError


def _add_model_catalog(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--model", required=required, metavar="M",
                        help="run directory, model.keras or exported SavedModel (with an 'embed' signature)")
    parser.add_argument("--catalog", required=required, metavar="C", help="catalog file (CSV/TSV/JSONL/Parquet)")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="products per model call (default 256)")
    parser.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true",
                        help="no progress bar (--no-progress: the old spelling)")
    add_schema_options(parser)


def register(subparsers) -> None:
    embed = subparsers.add_parser("embed", help="write one embedding per product (sharded, resumable)",
                                  description="Embed every product of a catalog with a trained model. Rerunning "
                                              "the same command resumes an interrupted job.")
    _add_model_catalog(embed, required=True)
    embed.add_argument("--out", required=True, metavar="DIR", help="output directory (manifest.json + shards)")
    embed.add_argument("--format", choices=["npy", "parquet"], default="npy", help="shard format (default npy)")
    embed.add_argument("--shard-rows", type=positive_int, default=100_000, help="products per shard (default 100000)")
    embed.add_argument("--errors-file", metavar="FILE", help="write the catalog's bad rows here (JSON Lines)")
    embed.set_defaults(func=run_embed)

    neighbours = subparsers.add_parser("neighbours", help="build or query a nearest-neighbour index")
    actions = neighbours.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    build = actions.add_parser("build", help="index the vectors written by 'linnet embed'")
    build.add_argument("--vectors", required=True, metavar="DIR", help="output directory of 'linnet embed'")
    build.add_argument("--out", required=True, metavar="DIR", help="index directory")
    build.add_argument("--method", choices=["exact", "hnsw", "ivf"], default="exact",
                       help="exact (TF, default) or approximate with faiss: hnsw, ivf (pip install 'linnet[ann]')")
    build.add_argument("--ef-search", type=positive_int, help="hnsw: search beam width (default 64)")
    build.add_argument("--nlist", type=positive_int, help="ivf: number of clusters (default 4*sqrt(N))")
    build.add_argument("--nprobe", type=positive_int, help="ivf: clusters probed per query (default 16)")
    build.set_defaults(func=run_neighbours_build)
    query = actions.add_parser("query", help="the k nearest indexed products of each query product")
    query.add_argument("--index", required=True, metavar="DIR", help="index directory ('linnet neighbours build')")
    query.add_argument("--vectors", metavar="DIR", help="query vectors ('linnet embed' output); or --model + --catalog")
    _add_model_catalog(query, required=False)
    query.add_argument("--k", type=positive_int, default=10, help="neighbours per product (default 10)")
    query.add_argument("--out", required=True, metavar="FILE", help="CSV: query_id, rank, neighbour_id, score")
    query.set_defaults(func=run_neighbours_query)

    attach = actions.add_parser("attach", help="copy an export with a 'neighbours' signature over the vectors",
                                description="Write a new SavedModel version whose 'neighbours' signature takes the "
                                            "export's inputs and returns the k nearest products of --vectors.")
    attach.add_argument("--export", required=True, metavar="DIR", help="export version directory (saved_model.pb)")
    attach.add_argument("--vectors", required=True, metavar="DIR", help="candidates ('linnet embed' output)")
    attach.add_argument("--out", required=True, metavar="DIR", help="new version directory, e.g. exports/NAME/2")
    attach.add_argument("--k", type=positive_int, default=10, help="neighbours per product (default 10)")
    attach.set_defaults(func=run_neighbours_attach)

    match = subparsers.add_parser("match", help="candidate duplicate pairs above a similarity threshold",
                                  description="List pairs of products whose embeddings' cosine similarity is at "
                                              "least --threshold: between two catalogs, or within one.")
    match.add_argument("--vectors", metavar="DIR", help="catalog A as 'linnet embed' output; or --model + --catalog")
    match.add_argument("--other-vectors", metavar="DIR", help="catalog B as 'linnet embed' output")
    match.add_argument("--other-catalog", metavar="FILE", help="catalog B (embedded with --model, same schema)")
    _add_model_catalog(match, required=False)
    match.add_argument("--threshold", type=float, default=0.9, help="minimum cosine similarity (default 0.9)")
    match.add_argument("--k", type=positive_int, default=10, help="candidates per product of A (default 10)")
    match.add_argument("--out", required=True, metavar="FILE", help="CSV: id_a, id_b, score")
    match.set_defaults(func=run_match)

    projector = subparsers.add_parser(
        "projector", help="TensorBoard projector files and a 2-D PNG of embeddings",
        description="Write the vectors of 'linnet embed' as TensorBoard projector files (tensors, metadata with "
                    "titles and category paths from --catalog) and a 2-D PNG map (PCA or t-SNE) coloured by level-1 "
                    "category. View with: tensorboard --logdir OUT")
    projector.add_argument("--vectors", required=True, metavar="DIR", help="output directory of 'linnet embed'")
    projector.add_argument("--catalog", metavar="FILE", help="catalog for titles and category paths (metadata)")
    projector.add_argument("--out", required=True, metavar="DIR", help="directory for the projector files")
    projector.add_argument("--projection", choices=["pca", "tsne"], default="pca", help="2-D map of the PNG")
    projector.add_argument("--no-png", action="store_true", help="skip the PNG")
    projector.add_argument("--max-points", type=positive_int, default=20_000, help="points in the PNG (sampled)")
    add_schema_options(projector)
    projector.set_defaults(func=run_projector)


# ---------------------------------------------------------------------------------------------- helpers
def _embed_to(args, model, catalog, out_dir, shard_rows: int = 100_000, file_format: str = "npy", errors_file=None):
    from linnet.embeddings.embed import embed_catalog, load_embedder  # lazy: loads TensorFlow when the command runs

    embedder = load_embedder(model)
    schema = schema_from_args(args, default=embedder.schema)
    return embed_catalog(embedder, catalog, out_dir, schema=schema, batch_size=args.batch_size, shard_rows=shard_rows,
                         file_format=file_format, progress=not args.quiet, errors_path=errors_file)


def _vectors(args, vectors_dir, catalog, what: str, expected_dim: int | None = None):
    """(ids, vectors) from a 'linnet embed' directory, or by embedding ``catalog`` with ``--model``."""
    from linnet.embeddings.embed import load_embedder, load_embeddings

    if vectors_dir:
        return load_embeddings(vectors_dir)
    if not (args.model and catalog):
        raise ConfigError(f"{what}: give --vectors DIR, or --model M with a catalog")
    if expected_dim is not None:
        dim = load_embedder(args.model).dim
        if dim != expected_dim:  # fail before embedding a whole catalog
            raise EmbeddingError(f"--model {args.model} gives {dim}-dimensional embeddings but the index holds "
                                 f"{expected_dim}-dimensional ones; embed with the model the index was built from")
    with tempfile.TemporaryDirectory(prefix="linnet-embed-") as temporary:
        _embed_to(args, args.model, catalog, temporary)
        return load_embeddings(temporary)


def _write_csv(path, header, rows) -> None:
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


# ---------------------------------------------------------------------------------------------- commands
def run_embed(args) -> int:
    result = _embed_to(args, args.model, args.catalog, args.out, args.shard_rows, args.format, args.errors_file)
    skipped = f"; {result.bad_rows} bad row(s) skipped" if result.bad_rows else ""
    print(f"{result.rows} products embedded ({result.dim} dimensions) into {result.out_dir}: "
          f"{result.shards_written} shard(s) written, {result.shards_skipped} already done{skipped}")
    return 0


def run_neighbours_build(args) -> int:
    from linnet.embeddings.embed import load_embeddings
    from linnet.embeddings.index_files import build_index

    ids, vectors = load_embeddings(args.vectors)
    params = {key: getattr(args, key) for key in ("ef_search", "nlist", "nprobe") if getattr(args, key) is not None}
    index = build_index(vectors, ids, args.out, method=args.method, source=str(args.vectors), **params)
    print(f"{args.method} index of {len(index)} products ({index.dim} dimensions) written to {args.out}")
    return 0


def run_neighbours_query(args) -> int:
    from linnet.embeddings.index_files import load_index

    index = load_index(args.index)
    ids, vectors = _vectors(args, args.vectors, args.catalog, "neighbours query", expected_dim=index.dim)
    result = index.search(vectors, k=args.k)
    rows = ((query_id, rank + 1, neighbour, f"{score:.6f}")
            for query_id, neighbours, scores in zip(ids, result["ids"], result["scores"])
            for rank, (neighbour, score) in enumerate(zip(neighbours, scores)) if neighbour != "")
    _write_csv(args.out, ["query_id", "rank", "neighbour_id", "score"], rows)
    print(f"{args.k} neighbours of {len(ids)} products written to {args.out}")
    return 0


def run_neighbours_attach(args) -> int:
    from linnet.embeddings.embed import load_embeddings
    from linnet.embeddings.neighbours import NeighbourIndex, add_neighbours_signature

    ids, vectors = load_embeddings(args.vectors)
    out = add_neighbours_signature(args.export, NeighbourIndex(vectors, ids=ids), args.out, k=args.k)
    print(f"{out}: a copy of {args.export} with signatures 'neighbours' and 'neighbours_by_vector' "
          f"({len(ids)} candidates, k={args.k})")
    return 0


def run_match(args) -> int:
    from linnet.embeddings.matching import match

    ids_a, vectors_a = _vectors(args, args.vectors, args.catalog, "match")
    ids_b = vectors_b = None
    if args.other_vectors or args.other_catalog:
        ids_b, vectors_b = _vectors(args, args.other_vectors, args.other_catalog, "match (catalog B)")
    pairs = match(vectors_a, ids_a, vectors_b, ids_b, threshold=args.threshold, k=args.k)
    _write_csv(args.out, ["id_a", "id_b", "score"],
               ((a, b, f"{score:.6f}") for a, b, score in pairs.itertuples(index=False)))
    print(f"{len(pairs)} pair(s) with similarity >= {args.threshold} written to {args.out}")
    return 0


def run_projector(args) -> int:
    from linnet.embeddings.embed import load_embeddings
    from linnet.embeddings.projector import write_projector

    ids, vectors = load_embeddings(args.vectors)
    titles = paths = None
    if args.catalog:
        titles, paths = _catalog_metadata(args, ids)
    written = write_projector(args.out, vectors, ids, titles=titles, paths=paths, png=not args.no_png,
                              projection=args.projection, max_png_points=args.max_points)
    print(f"projector files for {len(ids)} products written to {args.out} "
          f"({', '.join(path.name for path in written.values())}); view with: tensorboard --logdir {args.out}")
    return 0


def _catalog_metadata(args, ids):
    """Title (first text column) and category names per level of each id, from the catalog."""
    from linnet.data import prepare_catalog

    schema = schema_from_args(args)
    catalog = prepare_catalog(args.catalog, schema, bad_rows="skip", unknown_labels="skip")
    row_of = {product_id: row for row, product_id in enumerate(catalog.ids)}
    first_text = schema.feature_text_fields[0] if schema.feature_text_fields else None
    titles, paths = [], []
    taxonomy = catalog.taxonomy
    for product_id in ids:
        row = row_of.get(str(product_id))
        titles.append("" if row is None or first_text is None else str(catalog.texts[first_text][row]))
        names = []
        if row is not None and taxonomy is not None:
            for level, class_index in enumerate(catalog.labels[row], start=1):
                if class_index < 0:
                    break
                names.append(taxonomy.name(taxonomy.classes(level)[class_index]))
        paths.append(names)
    return titles, paths
