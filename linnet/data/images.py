"""Image sources and decoding.

`resolve_image_source` (no TensorFlow) turns a catalog cell into a local file, inline bytes or nothing.
`decode_image` (TensorFlow ops) turns encoded bytes into a resized ``float32`` image in ``[0, 255]`` and an
``image_present`` flag; the training pipeline and the exported SavedModel both call it, so serving decodes
exactly like training.

A TensorFlow decoder raises on corrupt data, and a graph cannot catch an exception. `decode_image`
therefore decodes each image inside a one-element ``tf.data`` pipeline with ``ignore_errors()`` followed
by a blank fallback: a corrupt, truncated, empty or non-image input yields zeros and ``image_present=0``
instead of failing the batch. The construction is plain TF ops, so it runs inside ``tf.function``,
``Dataset.map`` and a SavedModel.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
from typing import Any

IMAGE_FIELD = "image"
IMAGE_PRESENT_FIELD = "image_present"
_DATA_URI_PREFIX = "data:"
#: Larger images (by their header) are treated as unreadable: decoding them could exhaust memory.
DEFAULT_MAX_PIXELS = 50_000_000


def fetched_image_name(url: str) -> str:
    """File name `linnet images fetch` stores a URL's image under (in its ``--out`` directory)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:40]


def resolve_image_source(raw: Any, image_root: str | os.PathLike) -> tuple[str | bytes, str]:
    """``(source, kind)`` of one catalog image cell.

    ``source`` is an absolute file path, inline bytes, or ``""`` when there is nothing usable; ``kind`` is
    one of ``file``, ``bytes``, ``missing_file``, ``url_not_fetched``, ``none``. A URL resolves to the file
    `linnet images fetch` saved for it in ``image_root``. ``data:`` URIs (base64) are inline bytes.

    Example:
        >>> resolve_image_source("", "/tmp")
        ('', 'none')
        >>> resolve_image_source("https://example.com/x.jpg", "/nonexistent")
        ('', 'url_not_fetched')
    """
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return "", "none"
    if isinstance(raw, dict):  # Parquet/Hugging Face image struct {"bytes": ..., "path": ...}
        raw = raw.get("bytes") or raw.get("path")
        return resolve_image_source(raw, image_root)
    if isinstance(raw, (bytes, bytearray, memoryview)):
        data = bytes(raw)
        return (data, "bytes") if data else ("", "none")
    text = str(raw).strip()
    if not text:
        return "", "none"
    if text.startswith(_DATA_URI_PREFIX):
        _, _, payload = text.partition(",")
        try:
            data = base64.b64decode(payload, validate=False)
        except ValueError:
            return "", "missing_file"
        return (data, "bytes") if data else ("", "none")
    root = os.fspath(image_root)
    if text.startswith(("http://", "https://")):
        fetched = os.path.abspath(os.path.join(root, fetched_image_name(text)))
        return (fetched, "file") if os.path.isfile(fetched) else ("", "url_not_fetched")
    path = os.path.abspath(os.path.join(root, os.path.expanduser(text)))  # an absolute text ignores root
    return (path, "file") if os.path.isfile(path) else ("", "missing_file")


def _header_pixels(image_bytes):
    """Pixel count from the header of a JPEG, PNG or GIF (0 for other formats), without decoding."""
    import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

    def unsigned(offset: int, size: int, big_endian: bool):
        raw = tf.cast(tf.io.decode_raw(tf.strings.substr(image_bytes, offset, size), tf.uint8), tf.int64)
        weights = tf.constant([256 ** (size - 1 - i) if big_endian else 256 ** i for i in range(size)], tf.int64)
        return tf.reduce_sum(raw * weights)

    magic = tf.strings.substr(image_bytes, 0, 4)
    return tf.case([
        (tf.equal(magic, b"\x89PNG"), lambda: unsigned(16, 4, True) * unsigned(20, 4, True)),
        (tf.equal(magic, b"GIF8"), lambda: unsigned(6, 2, False) * unsigned(8, 2, False)),
        (tf.equal(tf.strings.substr(image_bytes, 0, 3), b"\xff\xd8\xff"),
         lambda: tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(image_bytes)[:2], tf.int64))),
    ], default=lambda: tf.constant(0, tf.int64))


def decode_image_or_raise(image_bytes, image_size: int, max_pixels: int = DEFAULT_MAX_PIXELS):
    """`decode_image` of one image without the safety net: raises on bad bytes or too many pixels.

    Only for stages that catch errors themselves (``ignore_errors()`` with a blank fallback).
    """
    import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

    # A decompression bomb (a small file declaring a huge picture) is refused before it is decoded.
    check = tf.debugging.assert_less_equal(_header_pixels(image_bytes), tf.constant(max_pixels, tf.int64),
                                           message="image larger than max_pixels")
    with tf.control_dependencies([check]):
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    image = tf.image.resize(tf.cast(image, tf.float32), [image_size, image_size])
    return tf.clip_by_value(image, 0.0, 255.0), tf.constant(1.0, tf.float32)


def _decode_or_blank(image_bytes, image_size: int, max_pixels: int = DEFAULT_MAX_PIXELS):
    """A one-element dataset: the decoded image, or zeros with ``present = 0`` when decoding fails."""
    import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

    blank = tf.data.Dataset.from_tensors((tf.zeros([image_size, image_size, 3], tf.float32), tf.constant(0.0)))
    decoded = tf.data.Dataset.from_tensors(image_bytes).map(
        lambda data: decode_image_or_raise(data, image_size, max_pixels))
    return decoded.ignore_errors().concatenate(blank).take(1)


def decode_image(image_bytes, image_size: int, parallelism: int | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
    """Decodes JPEG/PNG/GIF (first frame)/WebP/BMP bytes into ``float32 [S, S, 3]`` in ``[0, 255]``.

    Never raises on bad data: empty, missing, truncated or non-image bytes give an all-zero image and
    ``image_present = 0``.

    Args:
        image_bytes: ``tf.string`` scalar or ``[B]`` vector of encoded images.
        image_size: Output side ``S`` (images are resized, not cropped).
        parallelism: Images decoded at once for a ``[B]`` input (``tf.data.AUTOTUNE`` when None).
        max_pixels: JPEG/PNG/GIF images whose header declares more pixels are treated as unreadable
            (a decompression-bomb guard: they are never decoded).

    Returns:
        ``(image, image_present)``: ``[S, S, 3]`` and a scalar, or ``[B, S, S, 3]`` and ``[B]``.

    Example:
        >>> import tensorflow as tf
        >>> image, present = decode_image(tf.constant([b"", b"not an image"]), 32)
        >>> tuple(image.shape), present.numpy().tolist()
        ((2, 32, 32, 3), [0.0, 0.0])
    """
    import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

    image_bytes = tf.convert_to_tensor(image_bytes, dtype=tf.string)
    if image_bytes.shape.rank == 0:
        return _decode_or_blank(image_bytes, image_size, max_pixels).get_single_element()
    flat = tf.reshape(image_bytes, [-1])
    count = tf.shape(flat, out_type=tf.int64)[0]
    decoded = tf.data.Dataset.from_tensor_slices(flat).interleave(
        lambda data: _decode_or_blank(data, image_size, max_pixels),
        cycle_length=parallelism or tf.data.AUTOTUNE,
        num_parallel_calls=parallelism or tf.data.AUTOTUNE,
        deterministic=True,
    )
    empty = tf.data.Dataset.from_tensors((tf.zeros([0, image_size, image_size, 3]), tf.zeros([0])))
    # batch(count) gives one element, or none for an empty input; the empty fallback covers that case.
    images, present = decoded.batch(tf.maximum(count, 1)).concatenate(empty).take(1).get_single_element()
    images = tf.ensure_shape(images, [None, image_size, image_size, 3])
    return images, tf.ensure_shape(present, [None])


def read_image_bytes(path, inline):
    """TF op: the file's bytes when ``path`` is non-empty, else ``inline`` (scalar strings).

    Callers pass only paths that existed when the catalog was prepared (`resolve_image_source`).
    """
    import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

    return tf.cond(tf.strings.length(path) > 0, lambda: tf.io.read_file(path), lambda: inline)
