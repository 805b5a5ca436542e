"""``linnet export``: a run directory as a SavedModel in TF Serving's ``BASE/<name>/<version>/`` layout."""

from __future__ import annotations


def run_export(args) -> int:
    from linnet.serving.export import export_run, export_summary  # lazy: loads TensorFlow when the command runs

    export_dir = export_run(args.run_dir, args.out, name=args.name, version=args.version,
                            calibration=args.calibration, top_k=args.top_k,
                            decoding=args.decoding)
    print(export_summary(args.run_dir, export_dir))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export a trained run as a SavedModel for TF Serving and other TF graphs",
        description="Write RUN_DIR as OUT/<name>/<version>/ (SavedModel with signatures serving_default, embed, "
                    "scores; taxonomy and calibration assets; warm-up requests; MODEL_CARD.md). Never overwrites.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by 'linnet train --out'")
    parser.add_argument("--out", required=True, metavar="EXPORT_BASE", help="model base directory (TF Serving's)")
    parser.add_argument("--name", help="model name (default: the run directory's name)")
    parser.add_argument("--version", type=int, help="integer version (default: the next free one)")
    parser.add_argument("--calibration", metavar="FILE", help="thresholds from 'linnet calibrate' (default: none)")
    parser.add_argument("--top-k", type=int, default=5, help="leaf candidates returned per product (default: 5)")
    parser.add_argument("--decoding", choices=["path", "greedy"], default="path",
                        help="descent: the path with the best sum of level log-probabilities, or the best class "
                             "level by level (default: path)")
    parser.set_defaults(func=run_export)
