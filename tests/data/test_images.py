"""decode_image: every supported format, and bad bytes give a blank image with image_present=0, never an error."""

import numpy as np
import pytest

from .conftest import encode_image

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def samples():
    jpeg = encode_image("JPEG", size=40)
    png = encode_image("PNG", size=40)
    return {
        "jpeg": jpeg, "png": png, "gif": encode_image("GIF", size=40), "webp": encode_image("WEBP", size=40),
        "bmp": encode_image("BMP", size=40), "empty": b"", "garbage": b"this is not an image at all",
        "truncated_jpeg": jpeg[: len(jpeg) // 2], "truncated_png": png[: len(png) // 2],
        "jpeg_magic_then_junk": b"\xff\xd8\xff" + b"x" * 300,
    }


GOOD = ("jpeg", "png", "gif", "webp", "bmp")


def test_decodes_good_formats_and_blanks_bad_ones(samples):
    from linnet.data.images import decode_image

    names = list(samples)
    images, present = decode_image(tf.constant([samples[name] for name in names]), 32)
    assert images.shape == (len(names), 32, 32, 3) and images.dtype == tf.float32
    for index, name in enumerate(names):
        image = images[index].numpy()
        if name in GOOD:
            assert present[index] == 1.0, name
            assert image.max() > 100 and image.min() >= 0 and image.max() <= 255, name
        else:
            assert present[index] == 0.0, name
            assert not image.any(), name
    # the pixels are the picture's: lossless PNG matches a direct decode + resize
    expected = tf.image.resize(tf.cast(tf.io.decode_png(samples["png"], channels=3), tf.float32), [32, 32])
    np.testing.assert_allclose(images[names.index("png")].numpy(), expected.numpy(), atol=1e-3)


def test_scalar_and_empty_batch(samples):
    from linnet.data.images import decode_image

    image, present = decode_image(tf.constant(samples["png"]), 16)
    assert image.shape == (16, 16, 3) and float(present) == 1.0
    images, present = decode_image(tf.constant([], dtype=tf.string), 16)
    assert images.shape == (0, 16, 16, 3) and present.shape == (0,)


def test_works_inside_tf_function_and_a_saved_model(samples, tmp_path):
    from linnet.data.images import decode_image

    module = tf.Module()
    module.decode = tf.function(lambda data: decode_image(data, 24), input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "saved"))
    restored = tf.saved_model.load(str(tmp_path / "saved"))
    images, present = restored.decode(tf.constant([samples["jpeg"], samples["garbage"], samples["truncated_png"]]))
    assert present.numpy().tolist() == [1.0, 0.0, 0.0]
    assert images.shape == (3, 24, 24, 3) and images[0].numpy().max() > 100


def test_resolve_image_sources(tmp_path):
    import base64

    from linnet.data.images import fetched_image_name, resolve_image_source

    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 8  # magic bytes are all resolution reads
    (tmp_path / "a.jpg").write_bytes(png)
    assert resolve_image_source("a.jpg", tmp_path) == (str((tmp_path / "a.jpg").resolve()), "file")
    assert resolve_image_source(str(tmp_path / "a.jpg"), tmp_path)[1] == "file"  # absolute, but inside the root
    assert resolve_image_source(str(tmp_path / "a.jpg"), "/elsewhere") == ("", "outside_root")
    assert resolve_image_source(str(tmp_path / "a.jpg"), "/elsewhere", confine=False)[1] == "file"
    assert resolve_image_source("b.jpg", tmp_path) == ("", "missing_file")
    assert resolve_image_source(png, tmp_path) == (png, "bytes")
    assert resolve_image_source(b"\x89PNG", tmp_path) == ("", "not_image")  # not the whole signature
    assert resolve_image_source("data:image/png;base64," + base64.b64encode(png).decode(), tmp_path) == (png, "bytes")
    assert resolve_image_source("data:image/png;base64," + base64.b64encode(b"abc").decode(), tmp_path) == ("", "not_image")
    url = "https://shop.example/p/1.jpg"
    assert resolve_image_source(url, tmp_path) == ("", "url_not_fetched")
    (tmp_path / fetched_image_name(url)).write_bytes(b"y")
    assert resolve_image_source(url, tmp_path) == ("", "not_image")
    (tmp_path / fetched_image_name(url)).write_bytes(png)
    assert resolve_image_source(url, tmp_path)[1] == "file"
    assert resolve_image_source(None, tmp_path) == ("", "none")


def test_decompression_bomb_guard_reads_headers_only(samples):
    from linnet.data.images import _header_pixels, decode_image

    for name in ("jpeg", "png", "gif"):
        assert int(_header_pixels(tf.constant(samples[name]))) == 40 * 44, name
    batch = tf.constant([samples["jpeg"], samples["png"], samples["gif"], samples["webp"]])
    _, present = decode_image(batch, 16, max_pixels=1000)
    assert present.numpy().tolist() == [0.0, 0.0, 0.0, 0.0]  # WebP headers are read too (issue 23)
    _, present = decode_image(batch, 16)
    assert present.numpy().tolist() == [1.0, 1.0, 1.0, 1.0]
