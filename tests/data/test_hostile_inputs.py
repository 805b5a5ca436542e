"""Issue 23, item by item: each test is a small reproduction (fixtures in tests/data/hostile/) that failed on the
code before the issue was fixed."""

from __future__ import annotations

import csv
import http.server
import json
import os
import stat
import threading
import time
import typing
from pathlib import Path

import numpy as np
import pytest

from linnet.data import CatalogSchema, prepare_catalog
from linnet.data.readers import CatalogReader
from linnet.errors import CatalogError, ConfigError, TaxonomyError

from .conftest import encode_image
from .test_reader_properties import EchoModel

HOSTILE = Path(__file__).parent / "hostile"
PATH_SCHEMA = CatalogSchema(text_columns=["title"], category_column="category")


# ------------------------------------------------------------------ 1. no silent row loss
def test_a_stray_quote_pair_loses_no_row():
    records, bad = [], []
    for chunk in CatalogReader(HOSTILE / "stray_quotes.csv"):
        records += chunk.records
        bad += chunk.bad_rows
    assert len(records) + len(bad) == 5  # was "2 rows read, 0 bad"
    assert {record["id"] for record in records} >= {"2", "3", "5"}
    assert bad[0].location == 2 and "unbalanced quote" in bad[0].problem


def test_data_inspect_counts_every_record(tmp_path):
    catalog = prepare_catalog(HOSTILE / "stray_quotes.csv", PATH_SCHEMA, errors_path=tmp_path / "bad.jsonl")
    assert catalog.report.rows_read == 5 and catalog.report.rows_kept + len(catalog.report.bad_rows) == 5
    assert [json.loads(line)["line"] for line in (tmp_path / "bad.jsonl").read_text().splitlines()] == [2]


def test_predict_catalog_puts_every_id_in_the_predictions_or_the_errors(tmp_path):
    from linnet.serving.predict import predict_catalog

    predict_catalog(EchoModel(), HOSTILE / "stray_quotes.csv", PATH_SCHEMA, tmp_path / "out.csv",
                    tmp_path / "errors.csv", progress=False)
    with open(tmp_path / "out.csv", newline="") as handle:
        out = [row["id"] for row in csv.DictReader(handle)]
    with open(tmp_path / "errors.csv", newline="") as handle:
        errors = list(csv.DictReader(handle))
    assert sorted(out) == ["2", "3", "4", "5"] and [row["location"] for row in errors] == ["line 2"]


def test_predict_refuses_to_finish_when_records_and_outputs_disagree(tmp_path):
    from linnet.serving.predict import check_every_row_out

    (tmp_path / "out.partial").write_text("id,path\n1,A\n2,A\n")
    (tmp_path / "errors.partial").write_text("id,file,location,field,problem\n,c.csv,line 4,,bad\n")
    check_every_row_out(tmp_path / "out.partial", tmp_path / "errors.partial", 3, "c.csv")
    with pytest.raises(CatalogError, match="4 records read but 2 prediction lines and 1 id-less"):
        check_every_row_out(tmp_path / "out.partial", tmp_path / "errors.partial", 4, "c.csv")


# ------------------------------------------------------------------ 2 and 3. images confined, checked, bounded
@pytest.fixture
def image_tree(tmp_path):
    """root/ holds the catalog's images; a PNG sits next to it (outside), root/link.png points to it."""
    root = tmp_path / "root"
    root.mkdir()
    png = encode_image("PNG", size=8)
    (tmp_path / "outside.png").write_bytes(png)
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    (root / "notes.png").write_text("root:x:0:0:root:/root:/bin/bash\n")  # named .png, not an image
    (root / "ok.png").write_bytes(png)
    with open(root / "huge.png", "wb") as handle:  # 21 MiB (sparse): over the 20 MiB cap, never read whole
        handle.write(png[:16])
        handle.truncate(21 * 1024 * 1024)
    return root


def test_image_paths_stay_inside_the_image_root(image_tree):
    schema = CatalogSchema(text_columns=["title"], category_column="category", image_column="image",
                           image_root=str(image_tree))
    catalog = prepare_catalog(HOSTILE / "image_paths.csv", schema)
    kinds = catalog.report.images
    assert kinds["outside_root"] == 3  # ../outside.png, /etc/passwd, the symlink pointing out
    assert kinds["not_image"] == 1 and kinds["too_large"] == 1 and kinds["file"] == 1
    assert catalog.image_sources.tolist() == ["", "", "", "", str(image_tree / "ok.png"), ""]
    assert catalog.report.unusable_images == 5 and "5 of 6 images unusable (83%)" in catalog.report.summary()

    relaxed = prepare_catalog(HOSTILE / "image_paths.csv", CatalogSchema.from_dict(
        {**schema.to_dict(), "allow_images_outside_root": True}))
    assert relaxed.report.images["outside_root"] == 0
    assert relaxed.image_sources[0].endswith("outside.png")  # explicit opt-out: read
    assert relaxed.image_sources[1] == ""  # /etc/passwd is still not an image


def test_tfrecords_never_store_a_file_that_is_not_an_image(image_tree, tmp_path):
    from linnet.data.tfrecord import _image_bytes

    assert _image_bytes(str(image_tree / "notes.png")) == b""  # changed after preparation: checked again
    assert _image_bytes(str(image_tree / "huge.png")) == b""
    assert _image_bytes(str(image_tree / "ok.png")).startswith(b"\x89PNG")


def test_pixel_guard_reads_webp_and_bmp_headers():
    import tensorflow as tf

    from linnet.data.images import DEFAULT_MAX_PIXELS, _header_pixels, decode_image

    bomb = (HOSTILE / "bomb_16383.webp").read_bytes()  # 30 bytes declaring 16,383 x 16,383 pixels
    assert int(_header_pixels(tf.constant(bomb))) == 16383 * 16383 > DEFAULT_MAX_PIXELS
    lossy = encode_image("WEBP", size=30)
    images = [lossy, _reencode(lossy, "WEBP", lossless=True), encode_image("BMP", size=30)]
    assert [int(_header_pixels(tf.constant(data))) for data in images] == [30 * 34] * 3
    _, present = decode_image(tf.constant([*images, bomb]), 8, max_pixels=1000)
    assert present.numpy().tolist() == [0.0, 0.0, 0.0, 0.0]  # 1,020 pixels > 1,000: never decoded
    _, present = decode_image(tf.constant(images), 8, max_pixels=1020)
    assert present.numpy().tolist() == [1.0, 1.0, 1.0]


def _reencode(data: bytes, fmt: str, **options) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buffer, fmt, **options)
    return buffer.getvalue()


# ------------------------------------------------------------------ 4. the fetcher keeps its limits
class HostileHandler(http.server.BaseHTTPRequestHandler):
    png: typing.ClassVar[bytes] = encode_image("PNG", size=8)

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/drip.png":  # a valid answer, one byte every 0.1 s: each read is quick, the whole is not
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(self.png)))
            self.end_headers()
            try:
                for byte in self.png[:40]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
        elif self.path == "/to-ftp":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/secret.png")
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(self.png)))
            self.end_headers()
            self.wfile.write(self.png)


@pytest.fixture(scope="module")
def hostile_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HostileHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_timeout_bounds_the_whole_request(hostile_server, tmp_path):
    from linnet.data.fetch import fetch_images

    started = time.monotonic()
    report = fetch_images([hostile_server + "/drip.png"], tmp_path, timeout=0.5, retries=0, allow_private=True)
    elapsed = time.monotonic() - started
    assert report.results[hostile_server + "/drip.png"].status == "timeout"
    assert elapsed < 2.0  # was: the 4 s drip, however long, with a per-read timeout of 0.5 s


def test_fetch_follows_only_http_redirects_and_refuses_private_addresses(hostile_server, tmp_path):
    from linnet.data.fetch import fetch_images

    report = fetch_images([hostile_server + "/to-ftp", hostile_server + "/ok.png"], tmp_path, timeout=2, retries=0,
                          allow_private=True)
    assert report.results[hostile_server + "/to-ftp"].status == "refused"
    assert "ftp" in report.results[hostile_server + "/to-ftp"].error
    assert report.results[hostile_server + "/ok.png"].status == "ok"
    default = fetch_images([hostile_server + "/ok.png"], tmp_path / "default", timeout=2, retries=0)
    result = default.results[hostile_server + "/ok.png"]
    assert result.status == "refused" and "127.0.0.1" in result.error  # loopback: not without the option


def test_every_url_cell_gets_a_manifest_line(tmp_path, capsys):
    from linnet.cli.main import main

    catalog = tmp_path / "c.csv"
    catalog.write_text("id,title,image\n1,a,file:///etc/passwd\n2,b,ftp://example.com/x.png\n"
                       "3,c,http://127.0.0.1:9/x.png\n")
    assert main(["images", "fetch", str(catalog), "--out", str(tmp_path / "out"), "--image-column", "image",
                 "--timeout", "1", "--retries", "0"]) == 0
    manifest = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert {line["url"]: line["status"] for line in manifest} == {
        "file:///etc/passwd": "refused", "ftp://example.com/x.png": "refused", "http://127.0.0.1:9/x.png": "refused"}
    assert "| refused (scheme or address) | 3 |" in capsys.readouterr().out


# ------------------------------------------------------------------ 5. train skips and records bad rows
def test_train_accepts_errors_file_and_max_bad_rows(tmp_path):
    from linnet.cli.main import build_parser

    args = build_parser().parse_args(["train", "--catalog", "c.csv", "--out", "run", "--errors-file", "bad.jsonl",
                                      "--max-bad-rows", "3"])
    assert (args.errors_file, args.max_bad_rows) == ("bad.jsonl", 3)


def test_training_reads_past_bad_rows_up_to_the_limit(tmp_path):
    from linnet.training.trainer import _prepare_run, resolve_config

    catalog = tmp_path / "c.csv"
    rows = [f"{n},title {n},{'A > B' if n % 2 else 'A > C'}" for n in range(30)]
    catalog.write_text("id,title,category\n" + "\n".join(rows[:10] + ['10,"broken'] + rows[11:]) + "\n")
    errors = tmp_path / "bad.jsonl"
    run = _prepare_run(catalog, tmp_path / "run", resolve_config(), PATH_SCHEMA, None, None, resume=False,
                       max_rows=None, progress=False, bad_rows={"errors_path": errors, "max_bad_rows": 1})
    assert len(run.catalog) == 29 and len(run.catalog.report.bad_rows) == 1
    assert json.loads(errors.read_text())["line"] == 12
    with pytest.raises(CatalogError, match="more than 0 bad rows"):
        _prepare_run(catalog, tmp_path / "run2", resolve_config(), PATH_SCHEMA, None, None, resume=False,
                     max_rows=None, progress=False, bad_rows={"errors_path": tmp_path / "b2.jsonl", "max_bad_rows": 0})
    assert (tmp_path / "b2.jsonl").is_file()  # the row that tipped it over is on file


# ------------------------------------------------------------------ 6. unusable images are counted and named
class ImageEchoModel(EchoModel):
    """EchoModel with an image input; an image is 'decoded' when Pillow can read it."""

    def __init__(self):
        super().__init__()
        self.input_names = ["title", "image_bytes"]

    def predict_raw(self, inputs):
        import io

        from PIL import Image

        def decodes(data):
            try:
                Image.open(io.BytesIO(data)).load()
                return 1.0
            except Exception:  # noqa: BLE001
                return 0.0

        return {**super().predict_raw(inputs), "image_present": np.array([decodes(d) for d in inputs["image_bytes"]])}


def test_predict_writes_an_image_error_column(image_tree, tmp_path):
    from linnet.serving.predict import predict_catalog

    png = (image_tree / "ok.png").read_bytes()
    (image_tree / "cut.png").write_bytes(png[:40])  # right magic bytes, truncated
    catalog = tmp_path / "c.csv"
    catalog.write_text("id,title,category,image\n1,a,A > B,ok.png\n2,b,A > B,gone.png\n3,c,A > B,cut.png\n"
                       "4,d,A > B,notes.png\n5,e,A > B,\n6,f,A > B,../outside.png\n")
    schema = CatalogSchema(text_columns=["title"], category_column="category", image_column="image",
                           image_root=str(image_tree))
    summary = predict_catalog(ImageEchoModel(), catalog, schema, tmp_path / "out.csv", tmp_path / "errors.csv",
                              progress=False)
    with open(tmp_path / "out.csv", newline="") as handle:
        rows = {row["id"]: row for row in csv.DictReader(handle)}
    assert {key: row["image_error"] for key, row in rows.items()} == {
        "1": "", "2": "missing_file", "3": "undecodable", "4": "not_image", "5": "", "6": "outside_root"}
    assert summary["image_errors"] == 4


# ------------------------------------------------------------------ 7. permissions follow the umask
def test_atomic_writes_use_the_umask_defaults(tmp_path):
    from linnet.atomic_files import atomic_directory, write_atomically

    previous = os.umask(0o022)
    try:
        written = write_atomically(tmp_path / "run" / "metrics.json", "{}")
        with atomic_directory(tmp_path / "export" / "1") as folder:
            (folder / "saved_model.pb").write_bytes(b"")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(written.stat().st_mode) == 0o644  # was 0600 (mkstemp)
    assert stat.S_IMODE((tmp_path / "export" / "1").stat().st_mode) == 0o755  # was 0700 (mkdtemp)


# ------------------------------------------------------------------ 8. --resume never restarts silently
def test_resume_without_backup_and_restore_refuses(tmp_path):
    from linnet.training.trainer import train

    config = {"training": {"backup_and_restore": False, "epochs": 1}}
    with pytest.raises(ConfigError, match="--resume needs training.backup_and_restore"):
        train(HOSTILE / "stray_quotes.csv", tmp_path / "run", schema=PATH_SCHEMA, config=config, resume=True)
    (tmp_path / "run" / "state").mkdir(parents=True)  # an unfinished run with nothing backed up
    (tmp_path / "run" / "config.yaml").write_text("{}")
    with pytest.raises(ConfigError, match="no completed epoch backed up"):
        train(HOSTILE / "stray_quotes.csv", tmp_path / "run", schema=PATH_SCHEMA, resume=True)


# ------------------------------------------------------------------ 9. messages, not tracebacks
def test_batch_size_zero_is_a_usage_error(capsys):
    from linnet.cli.main import main

    for command in (["predict", "--model", "m", "--catalog", "c", "--out", "o"], ["embed", "--model", "m",
                                                                                 "--catalog", "c", "--out", "o"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--batch-size", "0"])
        assert exit_info.value.code == 2
        assert "expected a positive integer, got '0'" in capsys.readouterr().err


def test_an_unwritable_out_is_a_message(tmp_path, capsys, monkeypatch):
    from linnet.cli.main import main

    catalog = tmp_path / "c.csv"
    catalog.write_text("id,title,image\n1,a,http://example.com/a.png\n")
    (tmp_path / "file").write_text("")
    assert main(["images", "fetch", str(catalog), "--out", str(tmp_path / "file" / "out"), "--image-column",
                 "image"]) == 2
    assert "cannot write or read" in capsys.readouterr().err

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/read-only/out")

    monkeypatch.setattr("linnet.data.fetch.fetch_images", read_only)
    assert main(["images", "fetch", str(catalog), "--out", "/read-only/out", "--image-column", "image"]) == 2
    assert "cannot write or read /read-only/out: Permission denied" in capsys.readouterr().err


def test_serving_inputs_of_different_batch_sizes_fail_with_a_message():
    import tensorflow as tf

    from linnet.serving.export import same_batch_size

    checked = tf.function(same_batch_size)
    assert checked({"title": tf.constant(["a", "b"]), "image_bytes": tf.constant([b"", b""])})["title"].shape == (2,)
    with pytest.raises(tf.errors.InvalidArgumentError, match="inputs title and image_bytes have different batch sizes"):
        checked({"title": tf.constant(["a", "b", "c"]), "image_bytes": tf.constant([b"", b""])})


def test_duplicate_sibling_names_are_refused_at_load_time():
    from linnet.taxonomy import load_taxonomy

    with pytest.raises(TaxonomyError, match=r"nodes '2' and '3' under '1' are both named 'Shirts'"):
        load_taxonomy(HOSTILE / "duplicate_siblings.csv")
