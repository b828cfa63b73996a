"""A loopback proxy in front of the test wiki that can answer for it: a 5xx, an HTML error page, a slow answer.

Tests set `rule(path_and_query) -> (status, headers, body) | None`; None forwards the request to the wiki, and
`rewrite(path_and_query, body) -> body` may change what the wiki answered.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WikiProxy:
    """Forwards GET and POST to upstream unless rule answers; `seen` lists every path and query received."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.rule = lambda target: None
        self.rewrite = lambda target, body: body
        self.seen: list[str] = []
        self.agents: list[str] = []  # the User-Agent of each request
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._handle(None)

            def do_POST(self):
                self._handle(self.rfile.read(int(self.headers.get("content-length") or 0)))

            def _handle(self, body):
                proxy.seen.append(self.path)
                proxy.agents.append(self.headers.get("User-Agent", ""))
                answer = proxy.rule(self.path)
                if answer is None:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                    req = urllib.request.Request(proxy.upstream + self.path, data=body, headers=headers,
                                                 method=self.command)
                    try:
                        with urllib.request.urlopen(req, timeout=30) as r:
                            answer = (r.status, dict(r.headers.items()), proxy.rewrite(self.path, r.read()))
                    except urllib.error.HTTPError as exc:
                        answer = (exc.code, dict(exc.headers.items()), exc.read())
                status, headers, data = answer
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection", "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
