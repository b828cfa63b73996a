"""The permission matrix: a restricted article that matches better than anything public, seen through every
endpoint by callers with and without its group, in proxy and token mode; untrusted peers refused. And filters."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from rolesearch.api.app import create_app
from rolesearch.api.tokens import add_token
from rolesearch.settings import Settings
from tests.conftest import SMALL_ARTICLES

# Restricted to "hr"; it alone speaks of Project Falcon, so it is the best match for the question by far.
FALCON = """---
title: Project Falcon staffing
tags: [planning, confidential]
access: [hr]
---
# Project Falcon staffing

## Data Scientist

- Falcon churn forecast: the data scientist owns the Project Falcon churn forecast and presents it to the board.

## Data Engineer

- Falcon pipelines: the data engineer builds the Project Falcon ingestion pipelines.
"""
QUESTION = "who owns the Project Falcon churn forecast?"
# Salaries has no front matter: the access map gives it a group by its title at ingest.
ACCESS_MAP = """
- title: "salar*"
  groups: [finance]
- title: "project falcon*"   # falcon's own front matter groups win over the map
  groups: [everyone]
"""


@pytest.fixture(scope="module")
def perm_index(tmp_path_factory, embedder):
    from rolesearch.ingest.access import AccessMap
    from rolesearch.ingest.pipeline import build_index

    root = tmp_path_factory.mktemp("perm")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in SMALL_ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    (corpus / "falcon.md").write_text(FALCON, encoding="utf-8")
    (root / "access.yaml").write_text(ACCESS_MAP, encoding="utf-8")
    build_index(corpus, root / "index", embedder, access=AccessMap.load(root / "access.yaml"))
    return root


def _app(root, embedder, **auth):
    return create_app(Settings(index_dir=root / "index", corpus_dir=root / "corpus", access_log=False,
                               reload_interval=0, **auth), embedder=embedder)


@pytest.fixture(scope="module")
def proxy_app(perm_index, embedder):
    # Custom header names: the defaults (X-Forwarded-*) must then be ignored.
    return _app(perm_index, embedder, auth="proxy", trusted_proxies="10.0.0.0/24, 192.168.1.9",
                auth_user_header="X-Auth-User", auth_groups_header="X-Auth-Groups")


@pytest.fixture(scope="module")
def token_app(perm_index, embedder):
    tokens = perm_index / "tokens.json"
    add_token(tokens, "hr-report", ["hr"])
    add_token(tokens, "ops-bot", ["ops"])
    app = _app(perm_index, embedder, auth="token", auth_tokens_file=tokens)
    return app


def _proxy_client(app, groups: str | None, peer: str = "10.0.0.7"):
    headers = {"X-Auth-User": "ann"} | ({"X-Auth-Groups": groups} if groups is not None else {})
    return TestClient(app, client=(peer, 40000), headers=headers)


def _views(c: TestClient) -> dict:
    """Everything a caller can learn about the articles, endpoint by endpoint."""
    out = {}
    for method in ("get", "post"):
        kw = {"params": {"q": QUESTION, "k": 5, "facets": True}} if method == "get" else \
             {"json": {"q": QUESTION, "k": 5, "facets": True}}
        for path in ("/search", "/ask"):
            r = getattr(c, method)(path, **kw)
            assert r.status_code == 200, r.text
            out[f"{method.upper()} {path}"] = r.json()
    out["/articles"] = c.get("/articles")
    out["/articles/falcon"] = c.get("/articles/falcon", headers={"accept": "application/json"})
    out["/articles/nope"] = c.get("/articles/nope", headers={"accept": "application/json"})
    out["/healthz"] = c.get("/healthz").json()
    out["/"] = c.get("/")
    return out


def _assert_hidden(v: dict) -> None:
    for name in ("GET /search", "POST /search", "GET /ask", "POST /ask"):
        body = v[name]
        assert body["hits"], name  # k hits the caller may see still come back
        assert all(h["article_id"] == "rollback" for h in body["hits"]), name
        assert "Falcon" not in str(body["hits"]), name  # neither texts nor highlights
        assert {f["value"] for f in body["facets"]["article"]} == {"rollback"}, name
        assert not {"planning", "confidential"} & {f["value"] for f in body["facets"]["tag"]}, name
        if "answer" in body:
            a = body["answer"]
            assert "Falcon" not in a["text"] and "Project" not in a["text"], name
            assert "Data Scientist" not in {r["role"] for r in a["roles"]}, name
            assert all(e.startswith("rollback:") for r in a["roles"] for e in r["evidence"]), name
    assert v["/articles"].status_code == 200 and "Falcon" not in v["/articles"].text
    assert "1 articles" in v["/articles"].text
    # Not found, word for word like an id that never existed: its existence is not confirmed.
    assert v["/articles/falcon"].status_code == 404
    assert v["/articles/falcon"].json()["detail"] == v["/articles/nope"].json()["detail"].replace("nope", "falcon")
    assert v["/healthz"]["articles"] == 1
    assert v["/"].status_code == 200 and "Searching 1 article " in v["/"].text


def _assert_seen(v: dict, articles: int) -> None:
    for name in ("GET /search", "POST /search", "GET /ask", "POST /ask"):
        body = v[name]
        assert body["hits"][0]["article_id"] == "falcon", name
        assert "Falcon" in (body["hits"][0]["highlight"] or {}).get("text", ""), name
        assert {"falcon", "rollback"} <= {f["value"] for f in body["facets"]["article"]}, name
        if "answer" in body:
            a = body["answer"]
            assert a["answerable"] and a["roles"][0]["role"] == "Data Scientist", name
            assert a["roles"][0]["evidence"][0].startswith("falcon:"), name
            assert "Falcon" in a["text"], name
    assert "Project Falcon staffing" in v["/articles"].text
    assert v["/articles/falcon"].status_code == 200 and "Falcon churn forecast" in v["/articles/falcon"].text
    assert v["/healthz"]["articles"] == articles
    assert f"Searching {articles} articles" in v["/"].text


def test_proxy_mode_matrix(proxy_app):
    with _proxy_client(proxy_app, None) as nobody, _proxy_client(proxy_app, "staff, ops") as other, \
            _proxy_client(proxy_app, "staff,hr", peer="192.168.1.9") as hr, \
            _proxy_client(proxy_app, "hr,finance") as both:
        _assert_hidden(_views(nobody))
        _assert_hidden(_views(other))
        # The default header names carry nothing once others are configured.
        _assert_hidden(_views(TestClient(proxy_app, client=("10.0.0.7", 1), headers={"X-Forwarded-Groups": "hr"})))
        _assert_seen(_views(hr), articles=2)
        _assert_seen(_views(both), articles=3)
        passages = {c: c.get("/healthz").json()["passages"] for c in (nobody, hr, both)}
        assert passages[nobody] < passages[hr] < passages[both]


@pytest.mark.parametrize("path", ["/search?q=falcon", "/ask?q=falcon", "/articles", "/articles/falcon", "/healthz", "/"])
def test_proxy_mode_refuses_untrusted_peers(proxy_app, path):
    # Even claiming the right group: headers from a peer that is not a trusted proxy are not believed.
    for peer in ("10.0.1.7", "192.168.1.10", "testclient"):
        with _proxy_client(proxy_app, "hr", peer=peer) as c:
            r = c.get(path, headers={"accept": "application/json"})
            assert r.status_code == 403, (peer, path, r.text)
            assert r.json() == {"detail": f"requests must come through the authenticating proxy: peer {peer} "
                                          "is not in ROLESEARCH_TRUSTED_PROXIES"}


def test_token_mode_matrix(token_app, perm_index):
    tokens = perm_index / "tokens.json"
    hr_token = add_token(tokens, "hr-2", ["hr"])
    ops_token = add_token(tokens, "ops-2", ["ops"])
    assert hr_token not in tokens.read_text()  # only its hash is stored
    with TestClient(token_app) as anonymous, \
            TestClient(token_app, headers={"Authorization": f"Bearer {ops_token}"}) as ops, \
            TestClient(token_app, headers={"Authorization": f"Bearer {hr_token}"}) as hr:
        _assert_hidden(_views(anonymous))
        _assert_hidden(_views(ops))
        _assert_seen(_views(hr), articles=2)
        r = anonymous.get("/search", params={"q": QUESTION}, headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401 and "unknown token" in r.json()["detail"]


def test_token_added_while_serving_works_and_removed_stops(token_app, perm_index):
    from rolesearch.api.tokens import remove_token

    with TestClient(token_app) as c:
        token = add_token(perm_index / "tokens.json", "late", ["hr"])
        auth = {"Authorization": f"Bearer {token}"}
        assert c.get("/healthz", headers=auth).json()["articles"] == 2
        assert remove_token(perm_index / "tokens.json", "late")
        assert c.get("/healthz", headers=auth).status_code == 401


def test_auth_off_shows_everything_as_before(perm_index, embedder):
    with TestClient(_app(perm_index, embedder, auth="off")) as c:
        assert c.get("/healthz").json()["articles"] == 3
        assert c.get("/search", params={"q": QUESTION, "k": 1}).json()["hits"][0]["article_id"] == "falcon"


def test_the_access_map_restricts_by_title(perm_index):
    from rolesearch.store.manifest import read_manifest

    articles = read_manifest(perm_index / "index").articles
    assert articles["salaries"]["access"] == ["finance"]
    assert articles["falcon"]["access"] == ["hr"] and articles["rollback"]["access"] == []


def test_filters_narrow_before_ranking(perm_index, embedder):
    with TestClient(_app(perm_index, embedder, auth="off")) as c:
        def ids(**params):
            r = c.get("/search", params={"q": QUESTION, "k": 5} | params)
            assert r.status_code == 200, r.text
            return [h["article_id"] for h in r.json()["hits"]]

        assert set(ids()) == {"falcon", "rollback", "salaries"}
        # Still k hits, all from the article asked for, though falcon matches better.
        from rolesearch.store.manifest import read_manifest

        rollback_passages = read_manifest(perm_index / "index").articles["rollback"]["passages"]
        assert ids(article="rollback") == ["rollback"] * min(5, rollback_passages)
        assert set(ids(article=["rollback", "salaries"])) == {"rollback", "salaries"}
        assert set(ids(tag="PLANNING")) == {"falcon"}  # tags ignore case
        assert set(ids(source="folder")) == {"falcon", "rollback", "salaries"}
        # Unknown values are not errors: they match nothing.
        assert ids(tag="no-such-tag") == [] and ids(source="wiki") == [] and ids(article="nope") == []
        # Facets AND across, OR within.
        assert ids(tag="planning", article="rollback") == []
        r = c.post("/ask", json={"q": QUESTION, "article": ["rollback"]})
        assert r.status_code == 200 and "Data Scientist" not in {x["role"] for x in r.json()["answer"]["roles"]}
        assert all(h["article_id"] == "rollback" for h in r.json()["hits"])


def test_filters_and_groups_on_the_command_line(perm_index):
    import json

    from typer.testing import CliRunner

    from rolesearch.cli.main import app

    runner = CliRunner()
    index = str(perm_index / "index")
    base = ["search", QUESTION, "--index", index, "--json"]

    def ids(*extra):
        r = runner.invoke(app, base + list(extra))
        assert r.exit_code == 0, r.output
        return {h["article_id"] for h in json.loads(r.stdout)["hits"]}

    assert ids("--tag", "planning") == {"falcon"}
    assert ids("--article", "salaries", "--article", "rollback") == {"salaries", "rollback"}
    assert ids("--source", "wiki") == set()
    assert ids("--group", "ops") == {"rollback"}
    r = runner.invoke(app, ["ask", QUESTION, "--index", index, "--json", "--group", "hr", "--tag", "planning"])
    assert r.exit_code == 0 and json.loads(r.stdout)["answer"]["roles"][0]["role"] == "Data Scientist"


def test_access_map_rules_are_checked(tmp_path):
    from rolesearch.ingest.access import AccessMap, AccessMapError

    for text, words in [("- title: x\n", "groups must be a non-empty list"), ("- groups: [a]\n", "give at least one of"),
                        ("- titel: x\n  groups: [a]\n", "unknown keys titel"), ("title: x\n", "must be a list of rules")]:
        (tmp_path / "map.yaml").write_text(text)
        with pytest.raises(AccessMapError, match=words):
            AccessMap.load(tmp_path / "map.yaml")
