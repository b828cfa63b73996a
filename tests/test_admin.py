"""POST/GET /admin/reindex: auth, background reindex with progress, one at a time; hot reload in the app."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from rolesearch.api.app import create_app
from rolesearch.ingest.pipeline import build_index
from rolesearch.settings import Settings
from rolesearch.store.manifest import current_version
from rolesearch.store.publish import build_lock
from rolesearch.store.versions import load_version
from tests.conftest import DRIFT_ARTICLE

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _client(embedder, **settings) -> TestClient:
    return TestClient(create_app(Settings(**settings), embedder=embedder))


def _wait_done(client: TestClient, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get("/admin/reindex", headers=AUTH).json()
        if body["state"] != "running":
            return body
        time.sleep(0.1)
    raise AssertionError(f"reindex still running after {timeout}s: {body}")


def test_admin_is_off_without_a_token(small_index, small_corpus, embedder):
    with _client(embedder, index_dir=small_index, corpus_dir=small_corpus) as c:
        for method in (c.get, c.post):
            r = method("/admin/reindex", headers=AUTH)
            assert r.status_code == 403
            assert r.json()["detail"] == "admin endpoints are off: set ROLESEARCH_ADMIN_TOKEN to enable them"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer \xe9".encode("latin-1")}])
def test_missing_or_wrong_token_is_401(small_index, small_corpus, embedder, headers):
    with _client(embedder, index_dir=small_index, corpus_dir=small_corpus, admin_token=TOKEN) as c:
        for method in (c.get, c.post):
            r = method("/admin/reindex", headers=headers)
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == "Bearer"
            assert "admin token" in r.json()["detail"]
        assert c.get("/admin/reindex", headers=AUTH).json()["state"] == "idle"


def test_reindex_in_the_background_then_serves_the_new_version(small_index, small_corpus, embedder):
    before = current_version(small_index)
    (small_corpus / "drift.md").write_text(DRIFT_ARTICLE)
    with _client(embedder, index_dir=small_index, corpus_dir=small_corpus, admin_token=TOKEN,
                 reload_interval=0) as c:
        r = c.post("/admin/reindex", headers=AUTH)
        assert r.status_code == 202
        assert r.json()["state"] == "running" and r.json()["started_at"]
        body = _wait_done(c)
        assert body["state"] == "succeeded" and body["error"] is None and body["finished_at"]
        summary = body["summary"]
        assert summary["articles"] == {"added": 1, "changed": 0, "removed": 0, "unchanged": 2, "skipped": 0}
        drift = [p for p in load_version(small_index).passages if p.article_id == "drift"]
        assert summary["passages"]["embedded"] == len(drift)
        # progress counts every text embedded: the new passages and their sentences
        assert summary["passages"]["embedded"] + summary["sentences"]["embedded"] == body["embedded"] == body["to_embed"]
        # swapped in at once, not at the watcher's next poll (it is off here)
        health = c.get("/healthz").json()
        assert health["index_version"] == summary["version"] == current_version(small_index) != before
        assert health["articles"] == 3
        hit = c.get("/search", params={"q": "population stability index alert", "k": 1}).json()["hits"][0]
        assert hit["article_id"] == "drift"


def test_second_reindex_while_one_runs_is_409(small_index, small_corpus, embedder):
    with _client(embedder, index_dir=small_index, corpus_dir=small_corpus, admin_token=TOKEN) as c:
        # A build from the command line holds the lock: the reindex waits for it, and stays running.
        with build_lock(small_index):
            assert c.post("/admin/reindex", headers=AUTH).status_code == 202
            deadline = time.monotonic() + 10
            while c.get("/admin/reindex", headers=AUTH).json()["phase"] != "waiting" and time.monotonic() < deadline:
                time.sleep(0.05)
            r = c.post("/admin/reindex", headers=AUTH)
            assert r.status_code == 409
            assert r.json()["detail"] == "a reindex is already running; follow it at GET /admin/reindex"
            assert c.get("/admin/reindex", headers=AUTH).json() | {"started_at": None} == {
                "state": "running", "phase": "waiting", "started_at": None, "finished_at": None,
                "embedded": 0, "to_embed": 0, "summary": None, "error": None}
        assert _wait_done(c)["state"] == "succeeded"
        assert c.post("/admin/reindex", headers=AUTH).status_code == 202  # a new one may start now
        assert _wait_done(c)["state"] == "succeeded"


def test_failed_reindex_reports_and_keeps_serving(small_index, tmp_path, embedder):
    served = current_version(small_index)
    with _client(embedder, index_dir=small_index, corpus_dir=tmp_path / "no-such-corpus", admin_token=TOKEN) as c:
        assert c.post("/admin/reindex", headers=AUTH).status_code == 202
        body = _wait_done(c)
        assert body["state"] == "failed" and body["summary"] is None
        assert body["error"] == f"corpus folder {tmp_path / 'no-such-corpus'} does not exist"
        assert c.get("/healthz").json()["index_version"] == served == current_version(small_index)
        assert c.get("/search", params={"q": "rollback"}).status_code == 200


def test_app_picks_up_a_new_version_by_itself(small_index, small_corpus, embedder):
    with _client(embedder, index_dir=small_index, reload_interval=0.2) as c:
        first = c.get("/healthz").json()
        (small_corpus / "drift.md").write_text(DRIFT_ARTICLE)
        new = build_index(small_corpus, small_index, embedder).version
        deadline = time.monotonic() + 10
        while (health := c.get("/healthz").json())["index_version"] != new and time.monotonic() < deadline:
            time.sleep(0.1)
        assert health["index_version"] == new and health["articles"] == 3
        assert health["loaded_at"] >= first["loaded_at"] and health["reload_error"] is None
        hit = c.get("/search", params={"q": "population stability index alert", "k": 1}).json()["hits"][0]
        assert hit["article_id"] == "drift"
