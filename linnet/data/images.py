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
import stat
from typing import Any

IMAGE_FIELD = "image"
IMAGE_PRESENT_FIELD = "image_present"
_DATA_URI_PREFIX = "data:"
#: Larger images (by their header) are treated as unreadable: decoding them could exhaust memory.
DEFAULT_MAX_PIXELS = 50_000_000
#: Larger local files and inline images are not read (the fetcher's download limit is the same).
DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024
#: What `resolve_image_source` says about a cell that gives no usable image (each is counted and reported).
UNUSABLE_IMAGE_KINDS = ("missing_file", "url_not_fetched", "outside_root", "not_image", "too_large")
IMAGE_KINDS = ("file", "bytes", *UNUSABLE_IMAGE_KINDS, "none")
_MAGIC_BYTES = 16
_SIGNATURES = ((b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF87a", "gif"), (b"GIF89a", "gif"),
               (b"BM", "bmp"))


def image_format(head: bytes) -> str | None:
    """The format of encoded image bytes from their first bytes: one ``tf.io.decode_image`` accepts
    (``jpeg``, ``png``, ``gif``, ``bmp``, ``webp``), else None.

    Example:
        >>> image_format(b"\\x89PNG\\r\\n\\x1a\\n...."), image_format(b"root:x:0:0")
        ('png', None)
    """
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def fetched_image_name(url: str) -> str:
    """File name `linnet images fetch` stores a URL's image under (in its ``--out`` directory)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:40]


def resolve_image_source(raw: Any, image_root: str | os.PathLike, *, confine: bool = True,
                         max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> tuple[str | bytes, str]:
    """``(source, kind)`` of one catalog image cell.

    ``source`` is an absolute file path (symlinks resolved), inline bytes, or ``""`` when there is nothing
    usable; ``kind`` is ``file``, ``bytes``, ``none`` or one of `UNUSABLE_IMAGE_KINDS`. A URL resolves to the
    file `linnet images fetch` saved for it in ``image_root``. ``data:`` URIs (base64) are inline bytes.

    Untrusted cells stay confined: a path that resolves outside ``image_root`` (``../../etc/passwd``, an
    absolute path, a symlink pointing out) is ``outside_root`` unless ``confine=False``; a file that is not a
    regular file or does not start with an image format's magic bytes is ``not_image``; a file or inline
    image over ``max_bytes`` is ``too_large``. Nothing but the first bytes is read.

    Example:
        >>> resolve_image_source("", "/tmp")
        ('', 'none')
        >>> resolve_image_source("https://example.com/x.jpg", "/nonexistent")
        ('', 'url_not_fetched')
        >>> resolve_image_source("../../etc/passwd", "/srv/images")
        ('', 'outside_root')
    """
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return "", "none"
    if isinstance(raw, dict):  # Parquet/Hugging Face image struct {"bytes": ..., "path": ...}
        raw = raw.get("bytes") or raw.get("path")
        return resolve_image_source(raw, image_root, confine=confine, max_bytes=max_bytes)
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return _inline(bytes(raw), max_bytes)
    text = str(raw).strip()
    if not text:
        return "", "none"
    if text.startswith(_DATA_URI_PREFIX):
        _, _, payload = text.partition(",")
        try:
            data = base64.b64decode(payload, validate=False)
        except ValueError:
            return "", "not_image"
        return _inline(data, max_bytes)
    root = os.path.realpath(os.fspath(image_root))
    try:
        if text.startswith(("http://", "https://")):
            fetched = os.path.join(root, fetched_image_name(text))
            if not os.path.lexists(fetched):
                return "", "url_not_fetched"
            return _local_file(fetched, root, confine, max_bytes)
        # an absolute text ignores root (and is then outside it, unless it points into it)
        return _local_file(os.path.join(root, os.path.expanduser(text)), root, confine, max_bytes)
    except ValueError:  # a NUL byte or a lone surrogate: no file has that name, and the OS calls raise
        return "", "missing_file"


def _inline(data: bytes, max_bytes: int) -> tuple[bytes | str, str]:
    if not data:
        return "", "none"
    if len(data) > max_bytes:
        return "", "too_large"
    return (data, "bytes") if image_format(data[:_MAGIC_BYTES]) else ("", "not_image")


def _local_file(path: str, root: str, confine: bool, max_bytes: int) -> tuple[str, str]:
    resolved = os.path.realpath(path)
    if confine and os.path.commonpath([resolved, root]) != root:
        return "", "outside_root"
    try:
        info = os.stat(resolved)
    except (OSError, ValueError):  # ValueError: a NUL byte in the path
        return "", "missing_file"
    if not stat.S_ISREG(info.st_mode):  # a directory, a FIFO (which would block), a device
        return "", "not_image"
    if info.st_size > max_bytes:
        return "", "too_large"
    try:
        with open(resolved, "rb") as handle:
            head = handle.read(_MAGIC_BYTES)
    except OSError:
        return "", "missing_file"
    return (resolved, "file") if image_format(head) else ("", "not_image")


def read_image_file(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> tuple[bytes, str]:
    """``(bytes, kind)`` of an image file `resolve_image_source` accepted, checked again as it is read (the
    file may have changed since): ``file``, or ``b""`` with ``missing_file``, ``too_large`` or ``not_image``."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError:
        return b"", "missing_file"
    if len(data) > max_bytes:
        return b"", "too_large"
    return (data, "file") if image_format(data[:_MAGIC_BYTES]) else (b"", "not_image")


def _header_pixels(image_bytes):
    """Pixel count from the header of every format ``tf.io.decode_image`` accepts (JPEG, PNG, GIF, BMP,
    WebP), without decoding; anything else counts as too large, so it is never handed to a decoder."""
    import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

    def unsigned(offset: int, size: int, big_endian: bool = False):
        raw = tf.cast(tf.io.decode_raw(tf.strings.substr(image_bytes, offset, size), tf.uint8), tf.int64)
        raw = tf.pad(raw, [[0, size - tf.size(raw)]])  # a truncated header reads as zeros
        weights = tf.constant([256 ** (size - 1 - i) if big_endian else 256 ** i for i in range(size)], tf.int64)
        return tf.reduce_sum(raw * weights)

    def bmp():  # BITMAPCOREHEADER (12 bytes): 16-bit sides; later headers: signed 32-bit (negative = top-down)
        def signed(offset):
            value = unsigned(offset, 4)
            return tf.abs(tf.where(value >= 2 ** 31, value - 2 ** 32, value))
        return tf.cond(tf.equal(unsigned(14, 4), 12), lambda: unsigned(18, 2) * unsigned(20, 2),
                       lambda: signed(18) * signed(22))

    def webp():  # RIFF....WEBP then a VP8 (lossy), VP8L (lossless) or VP8X (extended: the canvas) chunk
        chunk = tf.strings.substr(image_bytes, 12, 4)
        lossy = (tf.bitwise.bitwise_and(unsigned(26, 2), 0x3FFF) * tf.bitwise.bitwise_and(unsigned(28, 2), 0x3FFF))
        bits = unsigned(21, 4)
        lossless = ((tf.bitwise.bitwise_and(bits, 0x3FFF) + 1)
                    * (tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 14), 0x3FFF) + 1))
        extended = (unsigned(24, 3) + 1) * (unsigned(27, 3) + 1)
        return tf.case([(tf.equal(chunk, b"VP8 "), lambda: lossy), (tf.equal(chunk, b"VP8L"), lambda: lossless),
                        (tf.equal(chunk, b"VP8X"), lambda: extended)], default=lambda: _UNKNOWN)

    _UNKNOWN = tf.constant(2 ** 62, tf.int64)
    magic = tf.strings.substr(image_bytes, 0, 4)
    return tf.case([
        (tf.equal(magic, b"\x89PNG"), lambda: unsigned(16, 4, True) * unsigned(20, 4, True)),
        (tf.equal(magic, b"GIF8"), lambda: unsigned(6, 2) * unsigned(8, 2)),
        (tf.equal(tf.strings.substr(image_bytes, 0, 3), b"\xff\xd8\xff"),
         lambda: tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(image_bytes)[:2], tf.int64))),
        (tf.equal(tf.strings.substr(image_bytes, 0, 2), b"BM"), bmp),
        (tf.logical_and(tf.equal(magic, b"RIFF"), tf.equal(tf.strings.substr(image_bytes, 8, 4), b"WEBP")), webp),
    ], default=lambda: _UNKNOWN)


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
        max_pixels: Images whose header declares more pixels are treated as unreadable (a
            decompression-bomb guard for every accepted format: they are never decoded).

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
