"""A small site on loopback for crawl tests: fixture pages, redirects, a 404, ETags, and a log of requests."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass(frozen=True)
class Chunked:
    """A body sent in `count` chunks of `piece` with Transfer-Encoding: chunked, no Content-Length."""

    piece: bytes
    count: int


@dataclass
class Site:
    """Routes by path: (status, headers, body). Tests change them between crawls."""

    routes: dict[str, tuple[int, dict, bytes]] = field(default_factory=dict)
    requests: list[tuple[str, dict]] = field(default_factory=list)  # (path, request headers)
    url: str = ""
    delay: float = 0.0  # seconds each request takes, so overlapping requests can be seen
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: dict[str, int] = field(default_factory=dict)  # path -> body bytes of a Chunked route written

    def chunked(self, path: str, piece: bytes, count: int) -> None:
        """A page of unknown length: count chunks of piece, streamed until the client stops reading."""
        self.routes[path] = (200, {"Content-Type": "text/html; charset=utf-8"}, Chunked(piece, count))

    def page(self, path: str, body: str | bytes, content_type: str = "text/html; charset=utf-8") -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = (200, {"Content-Type": content_type}, data)

    def redirect(self, path: str, location: str, status: int = 301) -> None:
        self.routes[path] = (status, {"Location": location}, b"")

    def fetched(self, path: str) -> list[dict]:
        """The headers of each request for path."""
        return [h for p, h in self.requests if p == path]


def serve(site: Site):
    """Start a threaded HTTP server for site on a free loopback port; returns (server, thread)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server name
            site.requests.append((self.path, dict(self.headers)))
            with site.lock:
                site.in_flight += 1
                site.max_in_flight = max(site.max_in_flight, site.in_flight)
            try:
                time.sleep(site.delay)
                self._answer()
            finally:
                with site.lock:
                    site.in_flight -= 1

        def _answer(self):
            status, headers, body = site.routes.get(self.path.split("?")[0], (404, {"Content-Type": "text/html"},
                                                                             b"<html><body>not found</body></html>"))
            if isinstance(body, Chunked):
                self._stream(status, headers, body)
                return
            etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"' if status == 200 else None
            if etag and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if etag:
                self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _stream(self, status, headers, body: Chunked):
            self.protocol_version = "HTTP/1.1"  # chunked transfer coding is HTTP/1.1's
            self.close_connection = True
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            path = self.path.split("?")[0]
            site.sent[path] = 0
            try:
                for _ in range(body.count):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(body.piece), body.piece))
                    site.sent[path] += len(body.piece)
                self.wfile.write(b"0\r\n\r\n")
            except OSError:  # the client closed the connection: it stopped reading
                pass

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def fixture_site(data: Path, other_host: str) -> Site:
    """The crawl fixture site of tests/data/crawl; /docs/elsewhere.html redirects to other_host."""
    site = Site()
    site.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, (data / "robots.txt").read_bytes())
    for name in ("index.html", "mlops.html", "changing.html", "gone.html", "renamed.html"):
        site.page(f"/docs/{name}", (data / name).read_text(encoding="utf-8"))
    site.page("/docs/private/salaries.html", (data / "salaries.html").read_text(encoding="utf-8"))
    site.redirect("/docs/old-name.html", "/docs/renamed.html")
    site.redirect("/docs/elsewhere.html", f"{other_host}/docs/elsewhere.html", 302)
    return site
