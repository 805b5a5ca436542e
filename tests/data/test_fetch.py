"""The image fetcher against a local HTTP server on 127.0.0.1 (images, redirects, 404s, slow and garbage answers)."""

import hashlib
import http.server
import json
import threading
import time
import typing

import pytest

from linnet.data.fetch import fetch_images, read_manifest
from linnet.data.images import fetched_image_name

from .conftest import encode_image

JPEG = encode_image("JPEG", size=20)
PNG = encode_image("PNG", size=20)


def _solid_png(side: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


BIG_PICTURE = _solid_png(400)  # a few hundred bytes that decode to 160,000 pixels: over the test's limit


class Handler(http.server.BaseHTTPRequestHandler):
    hits: typing.ClassVar[dict] = {}

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, code, body=b"", content_type="image/jpeg", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        Handler.hits[self.path] = Handler.hits.get(self.path, 0) + 1
        if self.path == "/ok.jpg":
            self._send(200, JPEG)
        elif self.path == "/redirect":
            self._send(302, b"", "text/plain", [("Location", "/ok.png")])
        elif self.path == "/ok.png":
            self._send(200, PNG, "image/png")
        elif self.path == "/missing.jpg":
            self._send(404, b"not here", "text/plain")
        elif self.path == "/slow.jpg":
            time.sleep(1.5)
            self._send(200, JPEG)
        elif self.path == "/garbage.jpg":
            self._send(200, b"\xff\xd8\xff this is not really a jpeg" * 10)
        elif self.path == "/page.html":
            self._send(200, b"<html></html>", "text/html")
        elif self.path == "/huge.jpg":
            self._send(200, b"\xff" * 5000)
        elif self.path == "/bomb.png":
            self._send(200, BIG_PICTURE, "image/png")
        elif self.path == "/cut.jpg":  # promises more than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(JPEG)))
            self.end_headers()
            self.wfile.write(JPEG[:50])
            self.wfile.flush()
            self.close_connection = True
        elif self.path == "/flaky.jpg":
            if Handler.hits[self.path] == 1:
                self._send(503, b"busy", "text/plain")
            else:
                self._send(200, JPEG)
        else:
            self._send(404, b"", "text/plain")


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # the client hung up on /slow.jpg, as intended
        pass


@pytest.fixture(scope="module")
def server():
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


EXPECTED = {
    "/ok.jpg": "ok", "/redirect": "ok", "/missing.jpg": "http_error", "/slow.jpg": "timeout",
    "/garbage.jpg": "not_image", "/page.html": "not_image", "/huge.jpg": "too_large", "/bomb.png": "too_large",
    "/flaky.jpg": "ok", "/cut.jpg": "error",
}


def test_every_outcome_and_resume(server, tmp_path):
    Handler.hits.clear()
    urls = [server + path for path in EXPECTED] + [server + "/ok.jpg"]  # a repeat is fetched once
    out = tmp_path / "images"
    report = fetch_images(urls, out, workers=4, timeout=0.5, retries=1, backoff=0.01, max_bytes=4000, max_pixels=10_000,
                          allow_private=True)
    statuses = {url.removeprefix(server): result.status for url, result in report.results.items()}
    assert statuses == EXPECTED
    assert Handler.hits["/ok.jpg"] == 1 and Handler.hits["/flaky.jpg"] == 2 and Handler.hits["/missing.jpg"] == 1
    assert Handler.hits["/slow.jpg"] == 2  # one retry after the timeout
    ok = report.results[server + "/ok.jpg"]
    assert (out / fetched_image_name(server + "/ok.jpg")).read_bytes() == JPEG
    assert ok.sha256 == hashlib.sha256(JPEG).hexdigest() and ok.bytes == len(JPEG)
    assert report.results[server + "/missing.jpg"].http_status == 404
    assert "decompression bomb" in report.results[server + "/bomb.png"].error
    table = report.table()
    assert "| ok | 3 |" in table and "| timeout | 1 |" in table and "| not an image | 2 |" in table
    assert "| too large | 2 |" in table and "| http error | 1 |" in table
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == len(EXPECTED)
    assert {"url", "status", "bytes", "sha256", "error"} <= set(manifest[0])

    # resume: what is ok is not fetched again; the rest is retried
    again = fetch_images(urls, out, workers=2, timeout=0.5, retries=0, max_bytes=4000, max_pixels=10_000,
                         allow_private=True)
    assert again.skipped == 3 and Handler.hits["/ok.jpg"] == 1 and Handler.hits["/missing.jpg"] == 2
    assert read_manifest(out / "manifest.jsonl")[server + "/ok.jpg"].status == "ok"


def test_fetched_urls_resolve_in_a_prepared_catalog(server, tmp_path):
    from linnet.data import CatalogSchema, prepare_catalog

    from .conftest import write_csv

    catalog = write_csv(tmp_path / "c.csv", ["id", "title", "image"],
                        [["1", "a", server + "/ok.png"], ["2", "b", server + "/missing.jpg"]])
    fetch_images([server + "/ok.png", server + "/missing.jpg"], tmp_path / "fetched", timeout=2, retries=0,
                 allow_private=True)
    schema = CatalogSchema(text_columns=["title"], image_column="image", image_root=str(tmp_path / "fetched"))
    prepared = prepare_catalog(catalog, schema)
    assert prepared.report.images["file"] == 1 and prepared.report.images["url_not_fetched"] == 1
    assert prepared.image_available().tolist() == [True, False]


def test_images_fetch_command_prints_the_outcome_table(server, tmp_path, capsys):
    import argparse

    from linnet.cli import data as data_cli

    from .conftest import write_csv

    catalog = write_csv(tmp_path / "c.csv", ["id", "title", "image"],
                        [["1", "a", server + "/ok.jpg"], ["2", "b", server + "/page.html"], ["3", "c", "local.jpg"]])
    parser = argparse.ArgumentParser(prog="linnet")
    data_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["images", "fetch", str(catalog), "--out", str(tmp_path / "fetched"),
                              "--image-column", "image", "--timeout", "2", "--retries", "0",
                              "--allow-private-addresses"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "| ok | 1 |" in out and "| not an image | 1 |" in out
    assert len((tmp_path / "fetched" / "manifest.jsonl").read_text().splitlines()) == 2
