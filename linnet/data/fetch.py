"""Download the image URLs of a catalog: bounded thread pool, timeouts, retries, size and bomb guards.

Every URL ends in one outcome (``ok``, ``http_error``, ``timeout``, ``not_image``, ``too_large``,
``refused``, ``error``) recorded in a JSON Lines manifest (url, status, http_status, bytes, sha256, error,
file). A request is bounded as a whole (connect, headers, body: ``timeout`` seconds in all, however slowly
a server drips), follows redirects only to http(s), and by default connects only to public addresses:
loopback, link-local, private and other reserved addresses are ``refused`` (checked on the address
actually connected to, so a redirect or a DNS answer cannot lead there) unless ``allow_private=True``. The
manifest is appended as results arrive, so an interrupted fetch resumes where it stopped: URLs already
``ok`` (with their file present) are not fetched again. Images are saved as
``OUT/<fetched_image_name(url)>``, which is where `prepare_catalog` looks for a URL's image when the
schema's ``image_root`` is ``OUT``.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import ipaddress
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image

from linnet.atomic_files import write_atomically
from linnet.data.images import fetched_image_name
from linnet.progress import progress_bar

OUTCOMES = ("ok", "http_error", "timeout", "not_image", "too_large", "refused", "error")
MANIFEST_NAME = "manifest.jsonl"
_RETRY_HTTP = {408, 425, 429, 500, 502, 503, 504}
_ACCEPTED_TYPES = ("image/", "application/octet-stream", "binary/octet-stream")
_USER_AGENT = "linnet-image-fetch/1 (+https://github.com/linnet)"


@dataclass
class FetchResult:
    """Outcome of one URL (one line of the manifest)."""

    url: str
    status: str
    http_status: int | None = None
    bytes: int = 0
    sha256: str | None = None
    error: str | None = None
    file: str | None = None
    attempts: int = 0


@dataclass
class FetchReport:
    """All outcomes of a fetch; `table` renders the counts as Markdown."""

    results: dict[str, FetchResult] = field(default_factory=dict)
    skipped: int = 0  # already fetched by an earlier run
    manifest: str | None = None

    def counts(self) -> dict[str, int]:
        counter = Counter(result.status for result in self.results.values())
        return {outcome: counter.get(outcome, 0) for outcome in OUTCOMES}

    def table(self) -> str:
        labels = {"ok": "ok", "http_error": "http error", "timeout": "timeout", "not_image": "not an image",
                  "too_large": "too large", "refused": "refused (scheme or address)", "error": "other error"}
        lines = ["| outcome | urls |", "|---|---|"]
        lines += [f"| {labels[outcome]} | {count} |" for outcome, count in self.counts().items()]
        lines.append(f"| (already fetched, skipped) | {self.skipped} |")
        return "\n".join(lines)


class _Outcome(Exception):
    def __init__(self, status: str, error: str, http_status: int | None = None, retry: bool = False):
        super().__init__(error)
        self.status, self.error, self.http_status, self.retry = status, error, http_status, retry


class _Request:
    """One request's guards: the deadline of the whole request and the addresses it may connect to.

    Its connection classes connect only to an allowed address (resolved here, then connected to by number,
    so the name cannot resolve elsewhere in between), and a timer shuts the socket down at the deadline,
    which ends any read in progress however slowly the server drips.
    """

    def __init__(self, timeout: float, allow_private: bool):
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.allow_private = allow_private
        self.expired = False
        self.sockets: list[socket.socket] = []
        self.timer = threading.Timer(timeout, self._expire)
        self.timer.daemon = True

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.001)

    def _expire(self) -> None:
        self.expired = True
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def check_address(self, address: str) -> None:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not self.allow_private and not ip.is_global:
            raise _Outcome("refused", f"address {ip} is not public (loopback, link-local, private or reserved); "
                                      "allow it with --allow-private-addresses")

    def create_connection(self, address, timeout=None, source_address=None):
        host, port = address[0], address[1]
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise OSError(f"cannot resolve {host!r}: {error}") from None
        last_error: Exception | None = None
        for family, kind, proto, _, sockaddr in infos:
            self.check_address(sockaddr[0])
            sock = socket.socket(family, kind, proto)
            sock.settimeout(min(self.timeout, self.remaining()))
            self.sockets.append(sock)
            try:
                sock.connect(sockaddr)
                return sock
            except OSError as error:
                last_error = error
                sock.close()
        raise last_error or OSError(f"cannot connect to {host!r}")

    def opener(self) -> urllib.request.OpenerDirector:
        guard = self

        class Connection(http.client.HTTPConnection):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self._create_connection = guard.create_connection

        class SecureConnection(http.client.HTTPSConnection):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self._create_connection = guard.create_connection

        class Handler(urllib.request.HTTPHandler):
            def http_open(self, request):
                return self.do_open(Connection, request)

        class SecureHandler(urllib.request.HTTPSHandler):
            def https_open(self, request):
                return self.do_open(SecureConnection, request, context=self._context,
                                    check_hostname=self._check_hostname)

        class Redirects(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, request, fp, code, message, headers, new_url):
                scheme = urllib.parse.urlsplit(new_url).scheme.lower()
                if scheme not in ("http", "https"):
                    raise _Outcome("refused", f"redirect to a {scheme or 'relative'}:// URL {new_url!r} (only http(s) "
                                              "is followed)", code)
                return super().redirect_request(request, fp, code, message, headers, new_url)

        return urllib.request.build_opener(Handler, SecureHandler, Redirects)


def _download(url: str, timeout: float, max_bytes: int, allow_private: bool = False) -> tuple[bytes, int, str]:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, "Accept": "image/*"})
    guard = _Request(timeout, allow_private)
    guard.timer.start()
    try:
        with guard.opener().open(request, timeout=timeout) as response:
            status = response.status
            content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if content_type and not content_type.startswith(_ACCEPTED_TYPES):
                raise _Outcome("not_image", f"content type {content_type!r}", status)
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise _Outcome("too_large", f"{length} bytes > limit {max_bytes}", status)
            data = bytearray()
            while len(data) <= max_bytes:
                piece = response.read1(min(65536, max_bytes + 1 - len(data)))
                if not piece or guard.expired:
                    break
                data += piece
            if guard.expired:
                raise TimeoutError(f"the whole request took longer than {timeout} s")
            if len(data) > max_bytes:
                raise _Outcome("too_large", f"more than {max_bytes} bytes", status)
            if length and length.isdigit() and len(data) < int(length):
                raise _Outcome("error", f"truncated: got {len(data)} of {length} bytes", status, retry=True)
            return bytes(data), status, content_type
    except urllib.error.HTTPError as error:
        raise _Outcome("http_error", f"HTTP {error.code} {error.reason}", error.code,
                       retry=error.code in _RETRY_HTTP) from None
    except TimeoutError as error:
        raise _Outcome("timeout", f"no answer within {timeout} s ({error})", retry=True) from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, _Outcome):
            raise error.reason from None
        if guard.expired or isinstance(error.reason, (TimeoutError, socket.timeout)):
            raise _Outcome("timeout", f"no answer within {timeout} s", retry=True) from None
        raise _Outcome("error", f"connection failed: {error.reason}", retry=True) from None
    except (ConnectionError, OSError, http.client.HTTPException) as error:
        if guard.expired:  # the deadline shut the socket down mid-read
            raise _Outcome("timeout", f"the whole request took longer than {timeout} s", retry=True) from None
        # e.g. IncompleteRead: the server hung up mid-body
        raise _Outcome("error", f"connection failed: {type(error).__name__}: {error}", retry=True) from None
    finally:
        guard.timer.cancel()


def _check_image(data: bytes, max_pixels: int) -> None:
    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            width, height = image.size
            if width * height > max_pixels:
                raise _Outcome("too_large", f"{width}x{height} pixels > limit {max_pixels} (decompression bomb guard)")
            image.verify()
    except Image.DecompressionBombError as error:
        raise _Outcome("too_large", f"decompression bomb guard: {error}") from None
    except _Outcome:
        raise
    except Exception as error:  # noqa: BLE001  Pillow raises many types for undecodable data
        raise _Outcome("not_image", f"not a decodable image: {type(error).__name__}: {error}") from None


def fetch_one(url: str, out_dir: Path, *, timeout: float, retries: int, backoff: float, max_bytes: int,
              max_pixels: int, allow_private: bool = False) -> FetchResult:
    """Fetches one URL with retries (exponential back-off on timeouts, connection errors, 429 and 5xx)."""
    if not url.lower().startswith(("http://", "https://")):
        return FetchResult(url, "refused", error="not an http(s) URL (file://, ftp:// and others are never fetched)")
    attempt = 0
    while True:
        attempt += 1
        try:
            data, http_status, _ = _download(url, timeout, max_bytes, allow_private)
            _check_image(data, max_pixels)
        except _Outcome as outcome:
            if outcome.retry and attempt <= retries:
                time.sleep(backoff * 2 ** (attempt - 1))
                continue
            return FetchResult(url, outcome.status, outcome.http_status, error=outcome.error, attempts=attempt)
        path = out_dir / fetched_image_name(url)
        write_atomically(path, data)
        return FetchResult(url, "ok", http_status, len(data), hashlib.sha256(data).hexdigest(), None, path.name, attempt)


def read_manifest(path: str | os.PathLike) -> dict[str, FetchResult]:
    """The newest result per URL of a manifest (later lines win); a torn last line is ignored."""
    results: dict[str, FetchResult] = {}
    path = Path(path)
    if not path.is_file():
        return results
    known = set(FetchResult.__dataclass_fields__)
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue  # an interrupted write; that URL is fetched again
        if isinstance(data, dict) and "url" in data and "status" in data:
            results[data["url"]] = FetchResult(**{key: value for key, value in data.items() if key in known})
    return results


def fetch_images(
    urls: Iterable[str],
    out_dir: str | os.PathLike,
    *,
    workers: int = 8,
    timeout: float = 10.0,
    retries: int = 2,
    backoff: float = 0.5,
    max_bytes: int = 20 * 1024 * 1024,
    max_pixels: int = 50_000_000,
    manifest: str | os.PathLike | None = None,
    progress: bool = False,
    allow_private: bool = False,
) -> FetchReport:
    """Downloads image URLs into ``out_dir`` and records every outcome in a resumable manifest.

    Args:
        urls: Image URLs (repeats are fetched once).
        out_dir: Where images go, as ``<fetched_image_name(url)>``; use it as the schema's ``image_root``.
        workers: Threads (downloads in flight at most).
        timeout: Seconds per request, all of it (connect, headers and body).
        retries: Extra attempts after a timeout, connection error, 429 or 5xx.
        backoff: First back-off in seconds; doubles on each retry.
        max_bytes: Larger responses are ``too_large`` (checked on Content-Length and while reading).
        max_pixels: Larger images are ``too_large`` (Pillow decompression-bomb guard, header only).
        manifest: Manifest path (default ``out_dir/manifest.jsonl``).
        progress: Show a tqdm progress bar.
        allow_private: Also connect to loopback, link-local and private addresses (tests, intranets).

    Every URL given gets a manifest line, including those never fetched (``refused``: not http(s), or not a
    public address).

    Example:
        >>> report = fetch_images(["https://example.com/a.jpg"], "images/", workers=4)  # doctest: +SKIP
        >>> print(report.table())  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = Path(manifest) if manifest is not None else out_dir / MANIFEST_NAME
    earlier = read_manifest(manifest_path)
    report = FetchReport(manifest=str(manifest_path))
    pending: list[str] = []
    for url in dict.fromkeys(url.strip() for url in urls if url and url.strip()):
        previous = earlier.get(url)
        if previous is not None and previous.status == "ok" and previous.file and (out_dir / previous.file).is_file():
            report.results[url] = previous
            report.skipped += 1
        else:
            pending.append(url)
    lock = threading.Lock()
    options = {"timeout": timeout, "retries": retries, "backoff": backoff, "max_bytes": max_bytes, "max_pixels": max_pixels,
               "allow_private": allow_private}
    with open(manifest_path, "a", encoding="utf-8") as log, \
            progress_bar(total=len(pending), desc="fetching images", unit=" urls", enabled=progress) as bar, \
            ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        in_flight = set()
        queue = iter(pending)

        def record(future) -> None:
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001  one URL's surprise must not stop the batch
                result = FetchResult(futures[future], "error", error=f"{type(error).__name__}: {error}")
            with lock:
                report.results[result.url] = result
                log.write(json.dumps(asdict(result)) + "\n")
                log.flush()
            bar.update(1)

        futures = {}
        for url in queue:
            future = pool.submit(fetch_one, url, out_dir, **options)
            futures[future] = url
            in_flight.add(future)
            if len(in_flight) >= 4 * workers:  # bounded: never queue the whole catalog
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    record(future)
        for future in in_flight:
            record(future)
    _compact_manifest(manifest_path, {**earlier, **report.results})
    return report


def _compact_manifest(path: Path, results: dict[str, FetchResult]) -> None:
    """Rewrites the append-only manifest as one line per URL (atomically)."""
    write_atomically(path, "".join(json.dumps(asdict(result)) + "\n" for result in results.values()))
