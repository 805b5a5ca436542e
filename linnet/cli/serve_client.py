"""``linnet serve-client``: send a catalog (or one product) to a model on TF Serving, over REST or gRPC."""

from __future__ import annotations

import json

from linnet.cli.schema_options import add_schema_options, positive_int, schema_from_args
from linnet.errors import ConfigError


def _client(args):
    from linnet.serving.client import ServingClient  # lazy: grpc/requests load only when it runs

    return ServingClient(args.model_name, rest_url=None if args.grpc else args.rest_url, grpc_target=args.grpc,
                         signature_name=args.signature, version=args.version, timeout=args.timeout,
                         retries=args.retries, rest_format=args.rest_format,
                         text_fields=args.text_fields, image=args.image)


def run_serve_client(args) -> int:
    client = _client(args)
    if args.title is not None:
        inputs = {field: [args.title if field == client.text_fields[0] else ""] for field in client.text_fields}
        if args.image:
            inputs["image_bytes"] = [b""]
        outputs = client.predict(inputs)
        print(json.dumps({name: value.tolist() if hasattr(value, "tolist") else value for name, value in outputs.items()},
                         default=lambda cell: cell.decode() if isinstance(cell, bytes) else str(cell), indent=1))
        return 0
    if not (args.catalog and args.out and args.taxonomy):
        raise ConfigError("give --title TEXT, or --catalog FILE --out FILE --taxonomy TAXONOMY_JSON "
                          "(the export's assets/taxonomy.json)")
    from linnet.serving.predict import predict_catalog
    from linnet.taxonomy import load_taxonomy

    client.taxonomy = load_taxonomy(args.taxonomy)
    schema = schema_from_args(args)
    summary = predict_catalog(client, args.catalog, schema, args.out, args.out + ".errors.csv",
                              batch_size=args.batch_size, progress=not args.quiet)
    print(f"{summary['rows']} products predicted, {summary['errors']} bad rows; {summary['out']}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve-client", help="call a model served by TF Serving (REST or gRPC)",
        description="Send one product (--title) or a whole catalog in batches to TF Serving, with timeouts "
                    "and retries. REST sends images as {\"b64\": ...}; gRPC uses PredictionService.")
    parser.add_argument("--model-name", required=True, help="name in serving/models.config")
    parser.add_argument("--rest-url", default="http://localhost:8501", help="REST base URL (default: %(default)s)")
    parser.add_argument("--grpc", metavar="HOST:PORT", help="use gRPC at this target (e.g. localhost:8500)")
    parser.add_argument("--rest-format", choices=["instances", "inputs"], default="instances",
                        help="REST body: TF Serving's row format (instances) or columnar (inputs) (default: %(default)s)")
    parser.add_argument("--signature", default="serving_default", help="signature name (default: %(default)s)")
    parser.add_argument("--version", type=int, help="a fixed model version (default: the newest)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default: %(default)s)")
    parser.add_argument("--retries", type=int, default=3, help="retries of transient failures (default: %(default)s)")
    parser.add_argument("--text-fields", type=lambda text: text.split(","), default=["title"],
                        help="the signature's text inputs, comma-separated (default: title)")
    parser.add_argument("--image", action="store_true", help="the signature has an image_bytes input")
    parser.add_argument("--title", help="predict this one text and print the outputs")
    parser.add_argument("--catalog", help="catalog file to send in batches")
    parser.add_argument("--out", help="predictions CSV for --catalog")
    parser.add_argument("--taxonomy", help="the export's assets/taxonomy.json (for --catalog)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="products per request (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_schema_options(parser)
    parser.set_defaults(func=run_serve_client)
