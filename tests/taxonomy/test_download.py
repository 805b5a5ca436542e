"""``download_taxonomies`` and ``linnet taxonomy download`` against a local HTTP server (never the internet)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading

import pytest

from linnet.cli.main import main
from linnet.errors import ConfigError
from linnet.taxonomy import load_taxonomy
from linnet.taxonomy.download import CHECKSUMS_FILE, download_taxonomies

ENGLISH = "# Google_Product_Taxonomy_Version: 2021-09-21\n1 - Animals\n3237 - Animals > Live Animals\n"
GERMAN = "# Google_Product_Taxonomy_Version: 2021-09-21\n1 - Tiere\n3237 - Tiere > Lebende Tiere\n"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture()
def mirror(tmp_path):
    """A folder served on 127.0.0.1 with the layout download expects under --base-url."""
    root = tmp_path / "mirror"
    (root / "google").mkdir(parents=True)
    (root / "google" / "taxonomy-with-ids.en-US.txt").write_text(ENGLISH, encoding="utf-8")
    (root / "google" / "taxonomy-with-ids.de-DE.txt").write_text(GERMAN, encoding="utf-8")
    (root / "google" / "taxonomy-with-ids.fr-FR.txt").write_text("<html>Service unavailable</html>\n", encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_download_writes_files_and_checksums(tmp_path, mirror):
    base_url = mirror
    cache = tmp_path / "cache"
    records = download_taxonomies(["google"], cache, locales=["en-US", "de-DE"], base_url=base_url, progress=False)
    assert [record["status"] for record in records] == ["downloaded", "downloaded"]
    english = cache / "google" / "taxonomy-with-ids.en-US.txt"
    assert english.read_text(encoding="utf-8") == ENGLISH
    expected = hashlib.sha256(ENGLISH.encode()).hexdigest()
    assert records[0]["sha256"] == expected and records[0]["version"] == "2021-09-21"
    checksums = json.loads((cache / CHECKSUMS_FILE).read_text(encoding="utf-8"))
    assert checksums["google/taxonomy-with-ids.en-US.txt"]["sha256"] == expected
    assert checksums["google/taxonomy-with-ids.de-DE.txt"]["url"] == f"{base_url}/google/taxonomy-with-ids.de-DE.txt"
    # The downloaded locales join into one tree.
    tree = load_taxonomy([english, cache / "google" / "taxonomy-with-ids.de-DE.txt"])
    assert tree.path("3237", "de-DE") == ("Tiere", "Lebende Tiere")
    assert not list(cache.rglob("*.part"))


def test_cached_files_are_not_fetched_again_unless_changed(tmp_path, mirror):
    base_url = mirror
    cache = tmp_path / "cache"
    download_taxonomies(["google"], cache, locales=["en-US"], base_url=base_url, progress=False)
    again = download_taxonomies(["google"], cache, locales=["en-US"], base_url=base_url, progress=False)
    assert again[0]["status"] == "cached"
    # A cached file that no longer matches its checksum is fetched again.
    (cache / "google" / "taxonomy-with-ids.en-US.txt").write_text("tampered", encoding="utf-8")
    repaired = download_taxonomies(["google"], cache, locales=["en-US"], base_url=base_url, progress=False)
    assert repaired[0]["status"] == "downloaded"
    assert (cache / "google" / "taxonomy-with-ids.en-US.txt").read_text(encoding="utf-8") == ENGLISH
    forced = download_taxonomies(["google"], cache, locales=["en-US"], base_url=base_url, force=True, progress=False)
    assert forced[0]["status"] == "downloaded"


def test_failures_are_reported_and_the_rest_continues(tmp_path, mirror):
    base_url = mirror
    cache = tmp_path / "cache"
    records = download_taxonomies(["google"], cache, locales=["fr-FR", "it-IT", "en-US"], base_url=base_url,
                                  progress=False)
    status = {record["path"].rsplit(".", 2)[-2]: record for record in records}
    assert status["fr-FR"]["status"] == "failed" and "expected a google taxonomy" in status["fr-FR"]["error"]
    assert status["it-IT"]["status"] == "failed" and "404" in status["it-IT"]["error"]
    assert status["en-US"]["status"] == "downloaded"
    # Nothing half-written: the bad page never reaches the cache.
    assert not (cache / "google" / "taxonomy-with-ids.fr-FR.txt").exists()
    assert not list(cache.rglob("*.part"))


def test_unknown_source_or_locale_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown taxonomy source"):
        download_taxonomies(["amazon"], tmp_path, progress=False)
    with pytest.raises(ConfigError, match="xx-XX"):
        download_taxonomies(["google"], tmp_path, locales=["xx-XX"], progress=False)


def test_download_command(tmp_path, mirror, capsys):
    base_url = mirror
    cache = tmp_path / "cache"
    argv = ["taxonomy", "download", "--source", "google", "--locales", "en-US", "--cache-dir", str(cache),
            "--base-url", base_url, "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "downloaded" in out and hashlib.sha256(ENGLISH.encode()).hexdigest()[:12] in out
    assert main(argv) == 0
    assert "cached" in capsys.readouterr().out
    argv[5] = "it-IT"
    assert main(argv) == 1
    assert "404" in capsys.readouterr().err
