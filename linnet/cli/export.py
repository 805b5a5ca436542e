"""``linnet export``: a run directory as a SavedModel in TF Serving's ``BASE/<name>/<version>/`` layout."""

from __future__ import annotations

import gc
import sys

from linnet.errors import ConfigError
from linnet.inference.calibration_file import DECODINGS, DEFAULT_DECODING


def _model_dir(args) -> str:
    """``--model``, or the old positional RUN_DIR (still accepted, with a note to move to ``--model``)."""
    if args.model and args.run_dir:
        raise ConfigError(f"give the run directory once: --model {args.model} (the positional {args.run_dir} is "
                          "the old spelling)")
    if args.run_dir:
        print(f"linnet export: note: the positional RUN_DIR is deprecated; use --model {args.run_dir}",
              file=sys.stderr)
        return args.run_dir
    if not args.model:
        raise ConfigError("give the run directory to export with --model RUN_DIR")
    return args.model


def run_export(args) -> int:
    import tensorflow  # noqa: F401  lazy: loaded here so the freeze below covers its objects (export_run imports it later)

    from linnet.serving.export import (  # lazy: loads TensorFlow when the command runs
        export_run,
        export_summary,
    )

    gc.freeze()  # as in `linnet train`: the collector's full passes while tracing skip TensorFlow's own objects

    run_dir = _model_dir(args)
    export_dir = export_run(run_dir, args.out, name=args.name, version=args.version,
                            calibration=args.calibration, top_k=args.top_k,
                            decoding=args.decoding, progress=not args.quiet)
    print(export_summary(run_dir, export_dir))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export a trained run as a SavedModel for TF Serving and other TF graphs",
        description="Write RUN_DIR as OUT/<name>/<version>/ (SavedModel with signatures serving_default, embed, "
                    "scores; taxonomy and calibration assets; warm-up requests; MODEL_CARD.md). Never overwrites.")
    parser.add_argument("--model", metavar="RUN_DIR", help="run directory written by 'linnet train --out'")
    parser.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="deprecated spelling of --model RUN_DIR")
    parser.add_argument("--out", required=True, metavar="EXPORT_BASE", help="model base directory (TF Serving's)")
    parser.add_argument("--quiet", action="store_true", help="no step-by-step progress lines")
    parser.add_argument("--name", help="model name (default: the run directory's name)")
    parser.add_argument("--version", type=int, help="integer version (default: the next free one)")
    parser.add_argument("--calibration", metavar="FILE", help="thresholds from 'linnet calibrate' (default: none)")
    parser.add_argument("--top-k", type=int, default=5, help="leaf candidates returned per product (default: 5)")
    parser.add_argument("--decoding", choices=DECODINGS, default=DEFAULT_DECODING,
                        help="descent: the best class level by level, ending where no child is likely (greedy, the "
                             "default), or the path with the best sum of level log-probabilities, each given the "
                             "level above (path)")
    parser.set_defaults(func=run_export)
