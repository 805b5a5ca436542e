"""Fetch the official Google and Shopify taxonomy files into a cache folder.

Each file is streamed into a temporary file next to its target, hashed while it arrives, checked to be a
taxonomy of the expected kind (not an HTML error page), then moved into place with `os.replace`. The cache's
``checksums.json`` records url, sha256, size, version and time of every file; a file whose bytes still match
its record is not fetched again. One failed file does not stop the others: it is reported in the result.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from linnet.atomic_files import write_text_atomically
from linnet.errors import ConfigError, TaxonomyError
from linnet.progress import progress_bar
from linnet.taxonomy.formats import sniff_format
from linnet.taxonomy.sources import SOURCES

CHECKSUMS_FILE = "checksums.json"
_CHUNK = 1 << 16
_USER_AGENT = "linnet-taxonomy-download"


def default_cache_dir() -> Path:
    """``$LINNET_CACHE_DIR/taxonomy`` or ``~/.cache/linnet/taxonomy``."""
    root = os.environ.get("LINNET_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "linnet") / "taxonomy"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_checksums(cache_dir: Path) -> dict:
    path = cache_dir / CHECKSUMS_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}:{error.lineno}: corrupt checksum record ({error.msg}); delete it to start over") from None


def _fetch(url: str, target: Path, timeout: float) -> tuple[str, int, Path]:
    """Stream ``url`` into a temporary file beside ``target``; return its sha256, size and path."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    digest = hashlib.sha256()
    size = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        with urllib.request.urlopen(request, timeout=timeout) as response, os.fdopen(handle, "wb") as stream:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
                stream.write(chunk)
        return digest.hexdigest(), size, Path(temporary)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def download_taxonomies(
    sources: Iterable[str] | None = None,
    cache_dir=None,
    locales: Iterable[str] | None = None,
    *,
    base_url: str | None = None,
    ref: str | None = None,
    force: bool = False,
    timeout: float = 60.0,
    progress: bool = True,
) -> list[dict]:
    """Download taxonomy files (all published locales by default) into ``cache_dir``.

    Args:
        sources: ``"google"``, ``"shopify"`` or both (default).
        cache_dir: Target folder (default `default_cache_dir`).
        locales: Only these locales (each must be published by every chosen source).
        base_url: Fetch ``<base_url>/<relative path>`` from a mirror instead of the official URLs.
        ref: Shopify git ref (tag or branch) to fetch; default ``main``.
        force: Fetch again even when the cached file matches its record.
        timeout: Seconds per request.
        progress: Show a progress bar.

    Returns:
        One record per file: ``source``, ``path``, ``url``, ``status`` (``downloaded``, ``cached`` or
        ``failed``), ``sha256``, ``size``, ``version`` and ``error`` (for failures).

    Raises:
        ConfigError: for an unknown source or locale.

    Example:
    >>> records = download_taxonomies(["google"], "cache", locales=["en-US"])  # doctest: +SKIP
    >>> records[0]["status"], records[0]["path"]  # doctest: +SKIP
    ('downloaded', 'cache/google/taxonomy-with-ids.en-US.txt')
    """
    names = list(sources) if sources else list(SOURCES)
    unknown = [name for name in names if name not in SOURCES]
    if unknown:
        raise ConfigError(f"unknown taxonomy source {unknown}; known: {sorted(SOURCES)}")
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for name in names:
        source = SOURCES[name]
        for relative, url in source.files(None if locales is None else list(locales), ref=ref):
            if base_url:
                url = f"{base_url.rstrip('/')}/{relative}"
            jobs.append((name, relative, url))
    checksums = _read_checksums(cache_dir)
    records = []
    for name, relative, url in progress_bar(jobs, desc="taxonomy files", unit="file", enabled=progress):
        target = cache_dir / relative
        record = {"source": name, "path": str(target), "url": url, "sha256": "", "size": 0, "version": None}
        known = checksums.get(relative)
        if not force and known and target.is_file() and sha256_of(target) == known.get("sha256"):
            record.update(status="cached", sha256=known["sha256"], size=known.get("size", 0),
                          version=known.get("version"))
            records.append(record)
            continue
        try:
            digest, size, temporary = _fetch(url, target, timeout)
        except (urllib.error.URLError, OSError, ValueError) as error:
            record.update(status="failed", error=f"{url}: {error}")
            records.append(record)
            continue
        kind = _check_content(temporary, name, relative)
        if kind is not None:
            temporary.unlink(missing_ok=True)
            record.update(status="failed", error=f"{url}: {kind}")
            records.append(record)
            continue
        os.replace(temporary, target)
        version = _version_of(target)
        record.update(status="downloaded", sha256=digest, size=size, version=version)
        checksums[relative] = {
            "url": url, "sha256": digest, "size": size, "version": version,
            "downloaded_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        # Record after every file, so an interrupted run keeps what it fetched.
        write_text_atomically(cache_dir / CHECKSUMS_FILE, json.dumps(checksums, indent=1, sort_keys=True) + "\n")
        records.append(record)
    return records


def _check_content(path: Path, source: str, relative: str) -> str | None:
    """Why the fetched file is not the expected taxonomy file, or None when it is."""
    expected = "mapping" if "/integrations/" in relative else source
    try:
        head = path.read_bytes()[:4096].decode("utf-8", errors="replace").lstrip("\ufeff")
    except OSError as error:
        return str(error)
    if expected == "mapping":
        return None if head.lstrip().startswith(("#", "→")) else "not a Shopify mapping file"
    try:
        kind = sniff_format(path)
    except TaxonomyError as error:
        return f"unreadable content ({error})"
    return None if kind == expected else f"expected a {expected} taxonomy file, got {kind!r} content"


def _version_of(path: Path) -> str | None:
    with open(path, encoding="utf-8", errors="replace") as stream:
        for _ in range(3):
            line = stream.readline()
            if ":" in line and line.startswith("#") and ("Version" in line or "Categories" in line):
                return line.rsplit(":", 1)[1].strip() or None
    return None
