"""A real `rolesearch serve` follows a rebuild made by another process, without one failed request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.conftest import DRIFT_ARTICLE, ROOT, free_port, wait_for

pytestmark = pytest.mark.slow

QUESTION = "who rolls back a bad model release?"


def test_serve_swaps_in_a_rebuild_with_zero_failed_requests(small_corpus, small_index, tmp_path):
    port = free_port()
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "ROLESEARCH_RELOAD_INTERVAL": "0.5"}
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "rolesearch", "serve", "--index", str(small_index),
                               "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    seen: list[list[tuple[int, str | None]]] = [[], []]  # per client: (status, index_version) in order
    errors: list[str] = []

    def health() -> dict | None:
        assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        try:
            return httpx.get(f"{base}/healthz", timeout=5).json()
        except httpx.HTTPError:
            return None

    def query(out: list) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            while not stop.is_set() and len(out) < 50_000:
                try:
                    r = client.get("/search", params={"q": QUESTION, "k": 3})
                    out.append((r.status_code, r.json().get("index_version")))
                except (httpx.HTTPError, ValueError) as exc:
                    errors.append(repr(exc))

    clients = [threading.Thread(target=query, args=(out,)) for out in seen]
    try:
        old = wait_for(health, 120, "the server to start")["index_version"]
        for t in clients:
            t.start()
        (small_corpus / "drift.md").write_text(DRIFT_ARTICLE)
        ingest = subprocess.run([sys.executable, "-m", "rolesearch", "ingest", "--corpus", str(small_corpus),
                                 "--index", str(small_index), "--json"],
                                env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert ingest.returncode == 0, ingest.stderr[-2000:]
        new = json.loads(ingest.stdout)["version"]
        published = time.monotonic()
        wait_for(lambda: health()["index_version"] == new, 15, "the server to serve the new version")
        swap_seconds = time.monotonic() - published
        wait_for(lambda: all(out and out[-1][1] == new for out in seen), 15, "queries on the new version")
        hit = httpx.get(f"{base}/search", params={"q": "population stability index alert", "k": 1}).json()["hits"][0]
        assert hit["article_id"] == "drift"
    finally:
        stop.set()
        for t in clients:
            if t.is_alive():
                t.join(timeout=60)
        server.terminate()
        server.wait(timeout=30)
        log.close()

    assert not errors, errors[:5]
    assert swap_seconds < 5
    for out in seen:
        assert len(out) >= 10
        assert {status for status, _ in out} == {200}
        versions = [v for _, v in out]
        # each client sees the old version, then the new one, never back: the swap is whole
        swap = versions.index(new)
        assert set(versions[:swap]) == {old} and set(versions[swap:]) == {new}
