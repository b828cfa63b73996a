"""The app under a real uvicorn in a thread of the test process, and where the tests find Chromium."""

from __future__ import annotations

import os
import socket
import threading

CHROMIUM = os.environ.get("ROLESEARCH_CHROMIUM", "/usr/bin/chromium")  # Debian's; `make chromium` installs it
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class AppServer:
    """An app served by uvicorn on a free loopback port, in a thread of this process; stop() ends it."""

    def __init__(self, app):
        import uvicorn

        from tests.conftest import wait_for

        self.app = app
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))  # the port is ours from here on: no race with another process
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), 60, "uvicorn to start")
        assert self.server.started, "uvicorn did not start"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
