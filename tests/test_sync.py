"""The background sync (serve --sync-every, POST /admin/notify) over a folder source, and the proxy's shared secret."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from rolesearch.api import sync
from rolesearch.api.app import create_app
from rolesearch.settings import Settings
from rolesearch.store.manifest import current_version
from rolesearch.store.versions import list_versions
from tests.conftest import DRIFT_ARTICLE, wait_for

SECRET = "wiki-shared-secret"
TOKEN = "admin-token"


def _client(embedder, **settings) -> TestClient:
    return TestClient(create_app(Settings(reload_interval=0, access_log=False, **settings), embedder=embedder))


def _titles(c: TestClient, q: str) -> set[str]:
    return {h["title"] for h in c.get("/search", params={"q": q, "k": 10}).json()["hits"]}


def _metric(c: TestClient, name: str) -> float:
    for line in c.get("/metrics").text.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_sync_every_follows_the_folder_without_a_command(small_index, small_corpus, embedder):
    with _client(embedder, index_dir=small_index, corpus_dir=small_corpus, sync_interval=0.3) as c:
        # The first sync finds nothing changed: nothing is published, the version stays.
        first = current_version(small_index)
        wait_for(lambda: c.get("/healthz").json()["sync"]["state"] == "succeeded", 30, "the first sync")
        health = c.get("/healthz").json()["sync"]
        assert health["pages_changed"] == 0 and health["error"] is None and health["interval"] == 0.3
        assert current_version(small_index) == first and len(list_versions(small_index)) == 1

        (small_corpus / "drift.md").write_text(DRIFT_ARTICLE)
        wait_for(lambda: "Drift runbook" in _titles(c, "population stability index incident"), 30, "the new article")
        assert _metric(c, "rolesearch_sync_pages_changed_total") == 1  # /healthz may show a later sync already

        (small_corpus / "salaries.txt").unlink()
        wait_for(lambda: "Salaries" not in _titles(c, "ML engineer salary New York"), 30, "the deleted article gone")
        time.sleep(1.0)  # several more syncs, nothing changed
        assert len(list_versions(small_index)) == 3  # first, added, removed: unchanged syncs publish nothing
        assert _metric(c, "rolesearch_sync_total") >= 4
        assert _metric(c, 'rolesearch_sync_total{outcome="published"}') == 2
        assert _metric(c, "rolesearch_sync_pages_changed_total") == 2
        assert 0 <= _metric(c, "rolesearch_sync_seconds_since_success") < 5


def test_a_failing_sync_keeps_serving_and_retries(small_index, small_corpus, tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(sync, "FIRST_BACKOFF", 0.2)
    missing = tmp_path / "later"
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - kind: folder\n    location: {missing}\n")
    with _client(embedder, index_dir=small_index, sources_file=sources, sync_interval=0.2) as c:
        version = c.get("/healthz").json()["index_version"]
        wait_for(lambda: c.get("/healthz").json()["sync"]["failures"] >= 2, 30, "two failed syncs")
        health = c.get("/healthz").json()
        assert health["sync"]["state"] == "failed" and str(missing) in health["sync"]["error"]
        assert health["index_version"] == version and health["status"] == "ok"
        assert "Salaries" in _titles(c, "ML engineer salary New York")  # still served
        assert _metric(c, 'rolesearch_sync_total{outcome="failed"}') >= 2
        assert _metric(c, "rolesearch_sync_seconds_since_success") == -1
        # The source comes back: the retry (backoff 0.2, 0.4, 0.8 ... s) publishes it.
        missing.mkdir()
        (missing / "drift.md").write_text(DRIFT_ARTICLE)
        wait_for(lambda: c.get("/healthz").json()["sync"]["state"] == "succeeded", 30, "a successful retry")
        assert _titles(c, "population stability index incident") == {"Drift runbook"}
        assert c.get("/healthz").json()["sync"]["failures"] == 0


def test_healthz_gives_a_reader_no_page_count_and_no_error_text(small_index, tmp_path, embedder, monkeypatch):
    """A failed sync's error can name pages (a refused widening lists restricted ones): /healthz keeps the text
    and the page count to callers who read everything; the admin sees them at /admin/notify."""
    monkeypatch.setattr(sync, "FIRST_BACKOFF", 0.2)
    missing = tmp_path / "payroll-restructuring"
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - kind: folder\n    location: {missing}\n")
    settings = Settings(index_dir=small_index, sources_file=sources, sync_interval=0.2, auth="proxy",
                        trusted_proxies="10.0.0.0/24", admin_token=TOKEN, reload_interval=0, access_log=False)
    with TestClient(create_app(settings, embedder=embedder), client=("10.0.0.7", 1)) as c:  # from the proxy, anonymous
        wait_for(lambda: c.get("/healthz").json()["sync"]["failures"] >= 1, 30, "a failed sync")
        health = c.get("/healthz")
        assert health.json()["sync"]["state"] == "failed" and health.json()["sync"]["pages_changed"] is None
        assert health.json()["sync"]["error"] and "payroll-restructuring" not in health.text
        whole = c.post("/admin/notify", json={"pages": []}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert "payroll-restructuring" in whole.json()["sync"]["error"]


def test_notify_needs_the_secret_or_the_admin_token(small_index, small_corpus, embedder):
    with _client(embedder, index_dir=small_index, corpus_dir=small_corpus, proxy_secret=SECRET, admin_token=TOKEN) as c:
        for headers in ({}, {"X-RoleSearch-Secret": "wrong"}, {"Authorization": "Bearer wrong"}):
            r = c.post("/admin/notify", json={"pages": [1]}, headers=headers)
            assert r.status_code == 401, headers
        assert c.get("/healthz").json()["sync"] is None  # no sync asked for, none configured
        assert c.post("/admin/notify", json={"pages": "x"}, headers={"X-RoleSearch-Secret": SECRET}).status_code == 422
        r = c.post("/admin/notify", json={"pages": [3]}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 202 and r.json()["queued"] == 1
    with _client(embedder, index_dir=small_index, corpus_dir=small_corpus) as c:  # neither configured: off
        assert c.post("/admin/notify", json={"pages": [1]}, headers={"X-RoleSearch-Secret": ""}).status_code == 403


def test_a_burst_of_notifications_is_one_sync_with_their_pages(small_index, small_corpus, embedder, monkeypatch):
    seen = []
    real_build = sync.build

    def recording_build(sources, index_dir, embedder, options):
        seen.append(options.notified_pages)
        return real_build(sources, index_dir, embedder, options)

    monkeypatch.setattr(sync, "build", recording_build)
    with _client(embedder, index_dir=small_index, corpus_dir=small_corpus, proxy_secret=SECRET) as c:
        (small_corpus / "drift.md").write_text(DRIFT_ARTICLE)
        for page in (7, 8, 9, 7):
            r = c.post(
                "/admin/notify", json={"pages": [page], "event": "edit"}, headers={"X-RoleSearch-Secret": SECRET}
            )
            assert r.status_code == 202
        wait_for(lambda: "Drift runbook" in _titles(c, "population stability index incident"), 30, "the push")
        time.sleep(0.5)
        assert seen == [frozenset({7, 8, 9})]
        assert c.get("/healthz").json()["sync"]["trigger"] == "notify"
        assert _metric(c, "rolesearch_sync_notified_pages_total") == 4


def _proxy_app(index, embedder):
    """Proxy mode behind the 10.0.0.0/24 proxies, identities believed only beside the shared secret."""
    return create_app(
        Settings(index_dir=index, auth="proxy", trusted_proxies="10.0.0.0/24", proxy_secret=SECRET, reload_interval=0),
        embedder=embedder,
    )


@pytest.fixture
def proxy_client(small_index, embedder):
    with TestClient(_proxy_app(small_index, embedder), client=("10.0.0.7", 1)) as c:
        yield c


@pytest.mark.parametrize(
    "headers,status",
    [
        ({"X-Forwarded-User": "ann", "X-Forwarded-Groups": "ops", "X-RoleSearch-Secret": SECRET}, 200),
        ({"X-Forwarded-User": "ann", "X-Forwarded-Groups": "ops"}, 403),  # identity without the secret
        ({"X-Forwarded-Groups": "ops", "X-RoleSearch-Secret": SECRET[:-1]}, 403),  # a wrong secret
        ({"X-Forwarded-Groups": "ops", "X-RoleSearch-Secret": SECRET + "x"}, 403),
        ({"X-RoleSearch-Secret": "wrong"}, 403),
        ({}, 200),  # asserting nobody: anonymous, public articles only
    ],
)
def test_proxy_mode_believes_identities_only_with_the_secret(proxy_client, headers, status):
    r = proxy_client.get("/search", params={"q": "rollback"}, headers=headers)
    assert r.status_code == status, r.text
    if status == 403:
        assert "X-RoleSearch-Secret" in r.json()["detail"]


def test_the_secret_does_not_admit_an_untrusted_peer(small_index, embedder):
    with TestClient(_proxy_app(small_index, embedder), client=("192.168.5.5", 1)) as c:
        r = c.get("/search", params={"q": "rollback"}, headers={"X-RoleSearch-Secret": SECRET, "X-Forwarded-User": "a"})
        assert r.status_code == 403 and "192.168.5.5" in r.json()["detail"]
