"""GET/POST /ask and highlights over HTTP, on the small index; `rolesearch ask --json` on the real corpus."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from rolesearch.api.app import create_app
from rolesearch.settings import Settings
from tests.conftest import ROOT


def test_ask_names_the_role_with_evidence(client):
    r = client.get("/ask", params={"q": "who owns model rollback?"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"query", "answer", "hits", "index_version", "took_ms", "facets", "search_id"}
    a = body["answer"]
    assert a["answerable"] is True
    assert [x["role"] for x in a["roles"]] == ["MLOps Engineer"]
    assert a["roles"][0]["evidence"][0] == "rollback:0"
    assert 0 < a["roles"][0]["confidence"] <= 1
    assert a["text"] == "MLOps Engineer: model versioning and rollback (Test, 'MLOps Engineer')."
    assert body["hits"][0]["passage_id"] == "rollback:0"
    post = client.post("/ask", json={"q": "who owns model rollback?"}).json()
    assert post["answer"] == a


def test_ask_off_topic_is_not_answerable(client):
    a = client.get("/ask", params={"q": "how do I reset my VPN password?"}).json()["answer"]
    reason = a.pop("reason")
    assert a == {"answerable": False, "roles": [], "text": "Nothing in the articles answers this question."}
    assert reason.startswith("no passage is close to the question (best cosine")
    assert client.get("/ask", params={"q": "who owns model rollback?"}).json()["answer"]["reason"] is None


def test_ask_non_role_question_has_no_roles(client):
    body = client.get("/ask", params={"q": "how much does an ML engineer earn in New York?"}).json()
    assert body["answer"]["answerable"] is True and body["answer"]["roles"] == []
    assert body["hits"][0]["article_id"] == "salaries"
    assert "$210,000" in body["answer"]["text"]


@pytest.mark.parametrize("params", [{"q": ""}, {"q": "   "}, {"q": "x" * 1001}, {"q": "ok", "k": 0}])
def test_ask_bad_requests_are_422(client, params):
    r = client.get("/ask", params=params)
    assert r.status_code == 422 and r.json()["detail"]


def test_hits_carry_highlight_offsets_within_the_passage(client):
    for path in ("/search", "/ask"):
        hits = client.get(path, params={"q": "who sets up drift monitoring and alerting?", "k": 3}).json()["hits"]
        for h in hits:
            hl = h["highlight"]
            assert h["text"][hl["start"]:hl["end"]] == hl["text"]
        assert hits[0]["highlight"]["text"].startswith("- Monitoring: the MLOps engineer sets up drift monitoring")


def test_ask_without_index_is_503(tmp_path, embedder):
    app = create_app(Settings(index_dir=tmp_path / "none"), embedder=embedder)
    with TestClient(app) as c:
        r = c.get("/ask", params={"q": "who owns model rollback?"})
    assert r.status_code == 503 and "rolesearch ingest" in r.json()["detail"]


@pytest.mark.slow
def test_cli_ask_json_is_the_http_body(corpus_index):
    out = subprocess.run(
        [sys.executable, "-m", "rolesearch", "ask", "who owns model rollback?", "--index", str(corpus_index), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["answer"]["roles"][0]["role"] == "MLOps Engineer"
    assert body["answer"]["text"].startswith("MLOps Engineer: model versioning and rollback (Tenyks")
