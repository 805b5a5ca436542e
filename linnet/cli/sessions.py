"""``linnet sessions train | evaluate | recommend | export | neighbours | map``: shopping sequences.

Flags only; the work is in `linnet.sessions`. TensorFlow is imported inside the commands.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from linnet.atomic_files import atomic_path
from linnet.cli.schema_options import positive_int
from linnet.errors import ConfigError


def _add_schema(parser: argparse.ArgumentParser, required: bool) -> None:
    group = parser.add_argument_group("event schema (no column name is assumed)")
    group.add_argument("--user-column", help="user (customer) id column")
    group.add_argument("--session-column", help="anonymous session id column (the session is the sequence)")
    group.add_argument("--item-column", required=required, help="item (product) id column")
    group.add_argument("--time-column", required=required, help="event time column")
    group.add_argument("--time-format", help="strftime format, or 'unix' (seconds); default: ISO dates")
    group.add_argument("--basket-column", help="order/invoice id: items bought together")
    group.add_argument("--event-column", help="event type column (with --event-values)")
    group.add_argument("--event-values", help="comma-separated event types to keep, e.g. purchase")
    group.add_argument("--quantity-column", help="quantity; 0 or negative is a return (see --keep-returns)")
    group.add_argument("--title-column", help="item title (neighbours, map, cold start)")
    rules = parser.add_argument_group("cleaning (dropped rows are counted per reason)")
    rules.add_argument("--cancel-prefixes", help="comma-separated basket id prefixes of cancellations, e.g. C,A")
    rules.add_argument("--keep-returns", action="store_true", help="keep rows with quantity <= 0")
    rules.add_argument("--exclude-items", metavar="REGEX", help="drop items fully matching this pattern")


def _schema_and_rules(args, stored=None):
    from linnet.sessions.events import CleaningRules, EventSchema

    if args.item_column is None and stored is not None:
        return stored
    if not (args.item_column and args.time_column):
        raise ConfigError("give --item-column and --time-column (and --user-column or --session-column)")
    schema = EventSchema(item_column=args.item_column, time_column=args.time_column, user_column=args.user_column,
                         session_column=args.session_column, basket_column=args.basket_column,
                         event_column=args.event_column,
                         event_values=tuple(v for v in (args.event_values or "").split(",") if v),
                         quantity_column=args.quantity_column, title_column=args.title_column,
                         time_format=args.time_format)
    rules = CleaningRules(drop_negative_quantity=not args.keep_returns,
                          cancel_basket_prefixes=tuple(p for p in (args.cancel_prefixes or "").split(",") if p),
                          exclude_items=args.exclude_items)
    return schema, rules


def register(subparsers) -> None:
    sessions = subparsers.add_parser("sessions", help="item embeddings and recommendations from shopping sequences",
                                     description="Behavioural item vectors (item2vec) and next-basket "
                                                 "recommendations from purchase or click logs.")
    actions = sessions.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    train = actions.add_parser("train", help="train item2vec and the recommender into a run directory")
    train.add_argument("--events", required=True, metavar="FILE", help="event log (CSV/TSV/JSONL/Parquet)")
    train.add_argument("--out", required=True, metavar="RUN", help="new run directory")
    train.add_argument("--config", metavar="YAML", help="settings (see linnet/sessions/config.py)")
    train.add_argument("--epochs", type=positive_int, help="item2vec epochs (overrides the config)")
    train.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true",
                       help="no progress bar (--no-progress: the same)")
    _add_schema(train, required=True)
    train.set_defaults(func=run_train)

    evaluate = actions.add_parser("evaluate", help="metrics of the recommender and the baselines on a time split")
    evaluate.add_argument("--model", required=True, metavar="RUN", help="a sessions run directory")
    evaluate.add_argument("--events", required=True, metavar="FILE",
                          help="events: history before --test-from, targets from it on (each user's first basket)")
    evaluate.add_argument("--test-from", required=True, metavar="DATE", help="e.g. 2010-09-01")
    evaluate.add_argument("--out", metavar="FILE", help="also write the table as JSON")
    _add_schema(evaluate, required=False)
    evaluate.set_defaults(func=run_evaluate)

    recommend = actions.add_parser("recommend", help="top-k items for every user of a history file")
    recommend.add_argument("--model", required=True, metavar="RUN_OR_EXPORT",
                           help="a sessions run directory or its export")
    recommend.add_argument("--events", required=True, metavar="HISTORY_FILE",
                           help="event log: the only history each user's recommendations use")
    recommend.add_argument("--k", type=positive_int, default=10, help="recommendations per user (default 10)")
    recommend.add_argument("--out", required=True, metavar="CSV", help="user_id, rank, item_id, score, error")
    recommend.add_argument("--run", metavar="RUN", help="with an export as --model: the run whose schema to use")
    _add_schema(recommend, required=False)
    recommend.set_defaults(func=run_recommend)

    export = actions.add_parser("export", help="SavedModel (TF Serving layout) with recommend and item_vectors")
    export.add_argument("--model", dest="run", metavar="RUN", help="the sessions run directory to export")
    export.add_argument("run_positional", nargs="?", metavar="RUN", help="the same as --model")
    export.add_argument("--out", required=True, metavar="BASE", help="base directory (TF Serving layout)")
    export.add_argument("--name", default="sessions", help="model name under BASE (default sessions)")
    export.add_argument("--version", type=positive_int, help="version number (default: the next free one)")
    export.set_defaults(func=run_export)

    neighbours = actions.add_parser("neighbours", help="cosine neighbours of items, with their titles")
    neighbours.add_argument("--model", required=True, metavar="RUN", help="a sessions run directory")
    neighbours.add_argument("--items", metavar="IDS", help="comma-separated item ids (default: 5 frequent ones)")
    neighbours.add_argument("--k", type=positive_int, default=5, help="neighbours per item (default 5)")
    neighbours.add_argument("--out", metavar="CSV", help="item_id, rank, neighbour_id, score, title")
    neighbours.set_defaults(func=run_neighbours)

    cold = actions.add_parser("cold-start", help="add new items (never in a sequence) by their titles",
                              description="Map the titles of new items through a LinNét product embedding into "
                                          "the item2vec space (a map learned on the items that have both) and "
                                          "write a new run that can recommend them and find their neighbours.")
    cold.add_argument("--model", required=True, metavar="RUN", help="the sessions run to extend")
    cold.add_argument("--title-model", required=True, metavar="LINNET_MODEL",
                      help="a LinNét classifier run or export (its embedding reads the titles)")
    cold.add_argument("--items", required=True, metavar="CSV", help="new items: an id and a title column")
    cold.add_argument("--id-column", required=True, help="the item id column of --items")
    cold.add_argument("--item-title-column", required=True, help="the title column of --items")
    cold.add_argument("--out", required=True, metavar="NEW_RUN", help="the new run directory")
    cold.set_defaults(func=run_cold_start)

    projector = actions.add_parser("projector", help="TensorBoard projector files and a 2-D map PNG of items")
    projector.add_argument("--model", required=True, metavar="RUN", help="a sessions run directory")
    projector.add_argument("--out", required=True, metavar="DIR", help="directory for the projector files and PNG")
    projector.add_argument("--projection", choices=["pca", "tsne"], default="tsne",
                           help="2-D projection of the map (default tsne)")
    projector.add_argument("--colour-model", metavar="LINNET_MODEL",
                           help="a LinNét classifier (run or export): colour items by its level-1 category of "
                                "their titles")
    projector.set_defaults(func=run_projector)


def run_train(args) -> int:
    import yaml

    from linnet.sessions.config import SessionsConfig
    from linnet.sessions.runs import train_run

    schema, rules = _schema_and_rules(args)
    settings = None
    if args.config:
        with open(args.config, encoding="utf-8") as handle:
            settings = yaml.safe_load(handle)
    config = SessionsConfig.from_dict(settings)
    if args.epochs:
        config.item2vec.epochs = args.epochs
    model = train_run(args.events, args.out, schema, rules, config, progress=not args.quiet)
    print(f"sessions run written to {args.out}: {model.metrics['users']} users, {model.metrics['items']} items, "
          f"item2vec in {model.metrics['item2vec_seconds']:.1f} s")
    return 0


def run_evaluate(args) -> int:
    import pandas as pd

    from linnet.atomic_files import write_json_atomically
    from linnet.sessions.events import read_events
    from linnet.sessions.runs import evaluate_split, load_model
    from linnet.sessions.sequences import time_split

    model = load_model(args.model)
    schema, rules = _schema_and_rules(args, stored=(model.schema, model.rules))
    log = read_events(args.events, schema, rules)
    try:
        cutoff = int(pd.Timestamp(args.test_from).value // 10**9)
    except ValueError as error:
        raise ConfigError(f"--test-from {args.test_from!r} is not a date: {error}") from None
    split = time_split(log.frame, cutoff)
    train_log = type(log)(split.train, log.report)
    rows = evaluate_split(model, train_log, split.test_users, split.test_items)
    columns = ["method", "hit_rate@10", "recall@10", "mrr@10", "hit_rate@20", "recall@20", "mrr@20", "coverage@10"]
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row[c] if c == "method" else f"{row[c]:.4f}" for c in columns) + " |")
    print(f"{rows[0]['users']} test users (first basket on or after {args.test_from})")
    if args.out:
        write_json_atomically(args.out, rows)
    return 0


def run_recommend(args) -> int:
    from linnet.serving.artifacts import EXPORT, artifact_kind
    from linnet.sessions.events import read_events
    from linnet.sessions.export import (
        histories_from_log,
        load_recommend_function,
        recommend_histories,
    )
    from linnet.sessions.runs import load_model

    is_export = artifact_kind(args.model, required=False) == EXPORT
    stored = None
    if not is_export or args.run:
        run = load_model(args.run or args.model)
        stored = (run.schema, run.rules)
        max_history = run.config.recommender.max_history
    else:
        max_history = 500
    schema, rules = _schema_and_rules(args, stored=stored)
    log = read_events(args.events, schema, rules)
    histories = histories_from_log(log.frame, max_history)
    out = recommend_histories(load_recommend_function(args.model), histories, args.k)
    errors = dict(log.report.dropped_owners)
    with atomic_path(args.out) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "rank", "item_id", "score", "error"])
        for user, ids, scores, unknown in zip(histories.users, out["item_ids"], out["scores"], out["unknown_items"]):
            kept = [(item.decode(), score) for item, score in zip(ids, scores) if item]
            if not kept:
                writer.writerow([user, "", "", "", "nothing to recommend"])
            writer.writerows([user, rank, item, f"{score:.6f}", ""] for rank, (item, score) in enumerate(kept, 1))
        for user, reason in errors.items():
            writer.writerow([user, "", "", "", f"no usable event (rows dropped: {reason})"])
    unknown = int(np.sum(out["unknown_items"]))
    print(f"{args.k} recommendations for {len(histories.users)} users written to {args.out} "
          f"({unknown} unknown item event(s) ignored; {len(errors)} user(s) with an error row)")
    return 0


def run_export(args) -> int:
    from linnet.sessions.export import SIGNATURES, export_recommender

    if args.run and args.run_positional and args.run != args.run_positional:
        raise ConfigError(f"two runs given: --model {args.run} and {args.run_positional}")
    run = args.run or args.run_positional
    if not run:
        raise ConfigError("give the run to export: --model RUN")
    target = export_recommender(run, args.out, name=args.name, version=args.version)
    print(f"exported to {target} (signatures: {', '.join(SIGNATURES)})")
    return 0


def run_neighbours(args) -> int:
    from linnet.sessions.runs import load_model
    from linnet.sessions.vectors import item_neighbours

    model = load_model(args.model)
    items = [item for item in (args.items or "").split(",") if item] or list(model.vocabulary.ids[:5])
    rows = item_neighbours(model, items, args.k)
    for item, rank, neighbour, score, title in rows:
        if rank == 1:
            print(f"{item}  {model.titles[model.vocabulary.index([item])[0]] if item in set(model.vocabulary.ids) else ''}")
        print(f"  {rank}. {neighbour}  {score:.3f}  {title}")
    if args.out:
        with atomic_path(args.out) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["item_id", "rank", "neighbour_id", "score", "title"])
            writer.writerows(rows)
    return 0


def run_cold_start(args) -> int:
    import pandas as pd

    from linnet.sessions.runs import load_model, write_model
    from linnet.sessions.vectors import add_cold_start_items, item_neighbours
    from linnet.training.run_directory import check_run_directory

    check_run_directory(args.out)
    model = load_model(args.model)
    items = pd.read_csv(args.items, dtype=str, keep_default_na=False)
    missing = [name for name in (args.id_column, args.item_title_column) if name not in items.columns]
    if missing:
        raise ConfigError(f"{args.items}: column(s) {missing} not found (columns: {list(items.columns)})")
    extended = add_cold_start_items(model, args.title_model, items[args.id_column], items[args.item_title_column])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_model(extended, out)
    for item, rank, neighbour, score, title in item_neighbours(extended, list(items[args.id_column])[:5], k=3):
        print(f"{item} -> {rank}. {neighbour} {score:.3f} {title}")
    print(f"{len(items)} new item(s) added to {len(model.vocabulary)}; run written to {args.out}")
    return 0


def run_projector(args) -> int:
    from linnet.sessions.runs import load_model
    from linnet.sessions.vectors import write_item_projector

    model = load_model(args.model)
    written = write_item_projector(model, args.out, projection=args.projection, colour_model=args.colour_model)
    print(f"projector files and map for {len(model.vocabulary)} items written to {args.out} "
          f"({', '.join(path.name for path in written.values())})")
    return 0
