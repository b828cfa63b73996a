"""Feedback and analytics over HTTP: search ids, POST /feedback and /feedback/click, the admin page and who sees
what on it, the switches, and a broken analytics database that never fails a search."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from fastapi.testclient import TestClient

from rolesearch.api.app import create_app
from rolesearch.api.tokens import add_token
from rolesearch.settings import Settings
from tests.conftest import SMALL_ARTICLES
from tests.test_permissions import FALCON, QUESTION

ADMIN = "admin-secret-token"
FALCON_TITLE = "Project Falcon staffing"
FALCON_TEXT = "presents it to the board"


@pytest.fixture(scope="module")
def root(tmp_path_factory, embedder):
    from rolesearch.ingest.pipeline import build_index

    root = tmp_path_factory.mktemp("feedback")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in SMALL_ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    (corpus / "falcon.md").write_text(FALCON, encoding="utf-8")
    build_index(corpus, root / "index", embedder)
    return root


def _app(root, embedder, **kw):
    return create_app(Settings(index_dir=root / "index", corpus_dir=root / "corpus", access_log=False,
                               reload_interval=0, admin_token=ADMIN, **kw), embedder=embedder)


def _flush(client: TestClient) -> None:
    assert client.app.state.recording.recorder.flush()


def _admin_page(client: TestClient, **headers) -> str:
    r = client.get("/admin/analytics", params={"since": "1d"},
                   headers={"Authorization": f"Bearer {ADMIN}", **headers})
    assert r.status_code == 200, r.text
    return r.text


def test_searches_clicks_and_judgements_are_recorded_with_hashed_readers(root, embedder, tmp_path):
    tokens = tmp_path / "tokens.json"
    hr = add_token(tokens, "hr-reader-hannah", ["hr"])
    db = tmp_path / "analytics.sqlite3"
    with TestClient(_app(root, embedder, auth="token", auth_tokens_file=tokens, analytics_file=db)) as c:
        asked = c.get("/ask", params={"q": QUESTION}, headers={"Authorization": f"Bearer {hr}"}).json()
        sid = asked["search_id"]
        assert re.fullmatch(r"[0-9a-f]{32}", sid) and asked["hits"][0]["article_id"] == "falcon"
        auth = {"Authorization": f"Bearer {hr}"}
        assert c.post("/feedback", json={"search_id": sid, "judgement": "down", "comment": "the board owns it"},
                      headers=auth).status_code == 202
        assert c.post("/feedback", json={"search_id": sid, "rank": 1, "judgement": "down"}, headers=auth).json() == \
            {"recorded": True}
        public = c.post("/search", json={"q": "who rolls back a bad model release?", "k": 3}).json()
        assert public["search_id"] != sid
        assert c.post("/feedback/click", json={"search_id": public["search_id"], "rank": 2}).status_code == 202
        # A beacon from the wiki's page sends the same JSON as text/plain (no CORS preflight).
        beacon = json.dumps({"search_id": public["search_id"], "rank": 3})
        assert c.post("/feedback/click", content=beacon, headers={"content-type": "text/plain"}).status_code == 202
        assert c.post("/feedback/click", content="{not json", headers={"content-type": "text/plain"}).status_code == 422
        _flush(c)
        page = _admin_page(c)
        metrics = c.get("/metrics").text
    assert 'rolesearch_analytics_events_total{kind="searches"} 2.0' in metrics
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT endpoint, query, abstained, answered, reader, index_version, hits FROM searches "
                        "ORDER BY ts").fetchall()
    public_q = "who rolls back a bad model release?"
    assert [(r[0], r[1], r[2]) for r in rows] == [("ask", QUESTION, 0), ("search", public_q, None)]
    assert rows[0][4] and re.fullmatch(r"[0-9a-f]{32}", rows[0][4]) and rows[1][4] != rows[0][4]
    assert rows[0][6].startswith('["falcon:')
    assert conn.execute("SELECT search_id, rank FROM clicks ORDER BY ts").fetchall() == [(public["search_id"], 2),
                                                                                       (public["search_id"], 3)]
    assert conn.execute("SELECT rank, judgement, comment FROM feedback ORDER BY ts").fetchall() == [
        (None, -1, "the board owns it"), (1, -1, None)]
    conn.close()
    wal = db.with_name(db.name + "-wal")
    raw = db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert b"hannah" not in raw  # the reader is a keyed hash, never the name
    # The admin token names no groups in token mode: the restricted article is named nowhere on the page.
    assert QUESTION in page and "the board owns it" in page
    assert FALCON_TITLE not in page and FALCON_TEXT not in page and "falcon:" not in page
    assert "A restricted article" in page and "public articles only" in page
    assert "(drawn from a restricted article)" in page
    # Auth off, every article is public: the same rows show the article to the admin.
    with TestClient(_app(root, embedder, analytics_file=db)) as c:
        page = _admin_page(c)
    assert FALCON_TITLE in page and FALCON_TEXT in page and "every article" in page
    # Behind a proxy, the admin reads with the groups the proxy names.
    proxy = {"auth": "proxy", "trusted_proxies": "10.0.0.0/24", "analytics_file": db}
    with TestClient(_app(root, embedder, **proxy), client=("10.0.0.7", 40000)) as c:
        assert FALCON_TITLE in _admin_page(c, **{"X-Forwarded-User": "ed", "X-Forwarded-Groups": "hr"})
        assert FALCON_TITLE not in _admin_page(c, **{"X-Forwarded-User": "ed", "X-Forwarded-Groups": "ops"})


def test_the_page_needs_the_admin_token(root, embedder, tmp_path):
    with TestClient(_app(root, embedder, analytics_file=tmp_path / "a.sqlite3")) as c:
        assert c.get("/admin/analytics").status_code == 401
        assert c.get("/admin/analytics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/admin/analytics", params={"since": "forever"},
                     headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 422
        page = _admin_page(c)  # nothing recorded yet: the page says so
        assert "no analytics database" in page or 'id="total-searches">0<' in page


@pytest.mark.parametrize("body", [
    {"search_id": "nope", "rank": 1}, {"search_id": "a" * 32, "rank": 0}, {"search_id": "a" * 32, "rank": 51},
    {"search_id": "a" * 32, "rank": 1, "extra": 1}, {"rank": 1}])
def test_bad_clicks_are_refused_with_a_message(root, embedder, tmp_path, body):
    with TestClient(_app(root, embedder, analytics_file=tmp_path / "a.sqlite3")) as c:
        r = c.post("/feedback/click", json=body)
        assert r.status_code == 422 and r.json()["detail"]
        r = c.post("/feedback", json={"search_id": "a" * 32, "judgement": "meh"})
        assert r.status_code == 422
        long = {"search_id": "a" * 32, "judgement": "up", "comment": "x" * 501}
        assert c.post("/feedback", json=long).status_code == 422


def test_off_records_nothing(root, embedder, tmp_path):
    db = tmp_path / "a.sqlite3"
    with TestClient(_app(root, embedder, analytics="off", analytics_file=db)) as c:
        body = c.get("/search", params={"q": "who rolls back a model?"}).json()
        assert body["search_id"] is None and c.get("/ask", params={"q": "rollback"}).json()["search_id"] is None
        r = c.post("/feedback/click", json={"search_id": "a" * 32, "rank": 1})
        assert r.status_code == 404 and "ROLESEARCH_ANALYTICS=off" in r.json()["detail"]
    assert not db.exists()


def test_without_query_text_only_a_keyed_hash_is_kept(root, embedder, tmp_path):
    db = tmp_path / "a.sqlite3"
    with TestClient(_app(root, embedder, analytics_file=db, analytics_query_text=False)) as c:
        for q in ("Who rolls back a model?", "who rolls back  a model?"):
            c.get("/search", params={"q": q})
        _flush(c)
        page = _admin_page(c)
    rows = sqlite3.connect(db).execute("SELECT query, query_hash FROM searches").fetchall()
    assert [r[0] for r in rows] == [None, None] and rows[0][1] == rows[1][1]  # the same query, counted together
    assert "rolls back" not in page and f"(hash {rows[0][1][:12]})" in page


def test_a_broken_analytics_database_never_fails_a_search(root, embedder, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with TestClient(_app(root, embedder, analytics_file=blocker / "analytics.sqlite3",
                         analytics_secret="k")) as c:
        for _ in range(3):
            r = c.get("/search", params={"q": "who rolls back a model?"})
            assert r.status_code == 200 and r.json()["hits"]
        _flush(c)
        metrics = c.get("/metrics").text
    assert 'rolesearch_analytics_events_dropped_total{reason="unavailable"} 3.0' in metrics
