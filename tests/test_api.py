"""The HTTP API over a small index, an app built per test."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from rolesearch.api.app import create_app
from rolesearch.settings import Settings


def test_search_get_and_post_agree(client):
    r = client.get("/search", params={"q": "who rolls back a bad model release?", "k": 2})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"query", "mode", "hits", "index_version", "took_ms", "facets", "search_id"}
    assert body["query"] == "who rolls back a bad model release?"
    assert len(body["hits"]) == 2
    top = body["hits"][0]
    assert top["passage_id"] == "rollback:0"
    assert top["rank"] == 1 and top["article_id"] == "rollback" and top["title"] == "Who does what in ML"
    assert top["section"] == "MLOps Engineer"
    assert top["text"].startswith("- Model versioning and rollback")
    assert top["url"].startswith("https://wiki.example/ml-roles#:~:text=")
    r2 = client.post("/search", json={"q": "who rolls back a bad model release?", "k": 2})
    assert r2.status_code == 200
    assert [h["passage_id"] for h in r2.json()["hits"]] == [h["passage_id"] for h in body["hits"]]


def test_hit_without_url_links_to_article_page(client):
    r = client.get("/search", params={"q": "salary of an ML engineer in New York", "k": 1, "mode": "dense"})
    hit = r.json()["hits"][0]
    assert hit["article_id"] == "salaries"
    assert hit["url"].startswith("/articles/salaries#career-options:~:text=")


@pytest.mark.parametrize(
    "params",
    [{"q": ""}, {"q": "   "}, {"q": "x" * 1001}, {"q": "ok", "k": 0}, {"q": "ok", "k": 51}, {"q": "ok", "k": "ten"},
     {}, {"q": "ok", "mode": "magic"}, {"q": "bad\x00char"}],
)
def test_bad_requests_are_422_with_a_message(client, params):
    r = client.get("/search", params=params)
    assert r.status_code == 422
    assert r.json()["detail"]


def test_post_bad_bodies(client):
    assert client.post("/search", json={"k": 3}).status_code == 422
    assert client.post("/search", json={"q": "ok", "k": 99}).status_code == 422
    assert client.post("/search", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422


def test_healthz_and_docs(client, small_index):
    from rolesearch.store.manifest import current_version

    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["index_version"] == current_version(small_index)
    assert body["articles"] == 2 and body["passages"] >= 3
    assert client.get("/docs").status_code == 200
    assert "/search" in client.get("/openapi.json").json()["paths"]


def test_no_index_is_503_not_500(tmp_path, embedder):
    app = create_app(Settings(index_dir=tmp_path / "empty"), embedder=embedder)
    with TestClient(app) as c:
        r = c.get("/search", params={"q": "anything"})
        assert r.status_code == 503
        assert "rolesearch ingest" in r.json()["detail"]
        assert c.get("/healthz").json()["status"] == "no-index"
