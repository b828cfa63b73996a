"""Permissions that hold when things change (issue 21): an article restricted after its ingest, a rollback to an
older version's groups, a forgotten or emptied access map, misspelt front matter, repeated identity headers,
trusted-proxy CIDRs with host bits, X-Forwarded-For rewriting, /metrics, caching headers, Confluence
ancestors and ROLESEARCH_AUTH left unset. Each test breaks the promise if the fix is taken out."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from rolesearch.api.app import create_app
from rolesearch.api.tokens import add_token
from rolesearch.ingest.access import AccessMap, AccessMapError
from rolesearch.ingest.pipeline import build_index
from rolesearch.settings import Settings
from rolesearch.store.access_change import AccessWidened, read_audit
from rolesearch.store.manifest import current_version, read_manifest
from rolesearch.store.versions import rollback
from tests.conftest import DATA, SMALL_ARTICLES

ADMIN = "admin-secret"
PUBLIC_FALCON = """---
title: Project Falcon staffing
---
# Project Falcon staffing

## Data Scientist

- Falcon churn forecast: the data scientist owns the Project Falcon churn forecast and presents it to the board.
"""
SECRET_FALCON = PUBLIC_FALCON.replace("title: Project Falcon staffing\n",
                                      "title: Project Falcon staffing\naccess: [hr]\n") \
    + "\n## Layoffs\n\n- Confidential: the Falcon team is cut by half in March.\n"


def _corpus(root, falcon: str | None = PUBLIC_FALCON):
    corpus = root / "corpus"
    corpus.mkdir(exist_ok=True)
    for name, text in SMALL_ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    if falcon is not None:
        (corpus / "falcon.md").write_text(falcon, encoding="utf-8")
    return corpus


def _app(root, embedder, corpus=None, **settings):
    return create_app(Settings(index_dir=root / "index", corpus_dir=corpus or root / "corpus", access_log=False,
                               reload_interval=0, **settings), embedder=embedder)


# --- the article page -----------------------------------------------------------------------------------


def test_an_article_restricted_after_its_ingest_is_not_served_whole(tmp_path, embedder):
    corpus = _corpus(tmp_path)
    build_index(corpus, tmp_path / "index", embedder)  # falcon indexed as public
    (corpus / "falcon.md").write_text(SECRET_FALCON, encoding="utf-8")  # then restricted, and given secrets
    tokens = tmp_path / "tokens.json"
    hr = add_token(tokens, "hr", ["hr"])
    with TestClient(_app(tmp_path, embedder, auth="token", auth_tokens_file=tokens)) as c:
        anonymous = c.get("/articles/falcon", headers={"accept": "application/json"})
        missing = c.get("/articles/nope", headers={"accept": "application/json"})
        assert anonymous.status_code == 404
        assert anonymous.json()["detail"] == missing.json()["detail"].replace("nope", "falcon")
        page = c.get("/articles/falcon", headers={"accept": "text/html"})
        assert page.status_code == 404 and "cut by half" not in page.text and "Falcon churn" not in page.text
        seen = c.get("/articles/falcon", headers={"Authorization": f"Bearer {hr}"})
        assert seen.status_code == 200 and "cut by half" in seen.text  # a reader in hr sees the file as it is


def test_the_article_page_reads_the_folder_it_was_indexed_from(tmp_path, embedder):
    corpus = _corpus(tmp_path)
    build_index(corpus, tmp_path / "index", embedder)
    other = tmp_path / "other"  # the server's corpus folder is another one, with a file at the same path
    other.mkdir()
    (other / "falcon.md").write_text(SECRET_FALCON.replace("access: [hr]\n", ""), encoding="utf-8")
    assert read_manifest(tmp_path / "index").articles["falcon"]["origin"] == str(corpus.resolve())
    with TestClient(_app(tmp_path, embedder, corpus=other, auth="off")) as c:
        r = c.get("/articles/falcon")
        assert r.status_code == 200 and "Falcon churn forecast" in r.text and "cut by half" not in r.text


# --- rollback --------------------------------------------------------------------------------------------


@pytest.fixture
def two_versions(tmp_path, embedder):
    """v1 with falcon public, v2 (published) with falcon restricted to hr; an admin-enabled app over them."""
    corpus = _corpus(tmp_path)
    build_index(corpus, tmp_path / "index", embedder)
    v1 = current_version(tmp_path / "index")
    (corpus / "falcon.md").write_text(SECRET_FALCON, encoding="utf-8")
    build_index(corpus, tmp_path / "index", embedder)
    v2 = current_version(tmp_path / "index")
    assert read_manifest(tmp_path / "index", v1).articles["falcon"]["access"] == []
    return tmp_path, v1, v2


def test_rollback_to_an_older_versions_groups_is_refused_then_audited(two_versions, embedder):
    root, v1, v2 = two_versions
    index = root / "index"
    with pytest.raises(AccessWidened, match=r"falcon: \[hr\] -> public") as refused:
        rollback(index, v1, embedder.name)
    assert refused.value.articles == {"falcon": (["hr"], [])}
    assert current_version(index) == v2 and read_audit(index) == []
    # The command line says the same and changes nothing; --allow-wider-access publishes it and is audited.
    from rolesearch.cli.main import app

    runner = CliRunner()
    r = runner.invoke(app, ["rollback", v1, "--index", str(index)])
    assert r.exit_code == 1 and "falcon: [hr] -> public" in r.output and current_version(index) == v2
    r = runner.invoke(app, ["rollback", v1, "--index", str(index), "--allow-wider-access"])
    assert r.exit_code == 0, r.output
    assert current_version(index) == v1
    [record] = read_audit(index)
    assert record["action"] == "rollback" and record["version"] == v1 and record["previous"] == v2
    assert record["forced_by"].startswith("command line (user ")
    assert record["widened"] == {"falcon": {"from": ["hr"], "to": []}}
    rollback(index, v2, embedder.name)  # narrowing again needs no flag, and is not an event for the audit
    assert current_version(index) == v2 and len(read_audit(index)) == 1


def test_rollback_through_the_admin_api_is_refused_unless_allowed(two_versions, embedder):
    root, v1, v2 = two_versions
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with TestClient(_app(root, embedder, admin_token=ADMIN, auth="off"), client=("10.1.2.3", 5)) as c:
        r = c.post("/admin/rollback", json={"version": v1}, headers=auth)
        assert r.status_code == 409 and "falcon: [hr] -> public" in r.json()["detail"]
        assert '"allow_wider_access": true' in r.json()["detail"]
        assert current_version(root / "index") == v2
        r = c.post("/admin/rollback", json={"version": v1, "allow_wider_access": True}, headers=auth)
        assert r.status_code == 200 and r.json()["published"] == v1
    [record] = read_audit(root / "index")
    assert record["forced_by"] == "admin API (admin token) from 10.1.2.3"


# --- the access map and front matter ---------------------------------------------------------------------


def test_an_ingest_without_the_map_refuses_to_drop_its_groups(tmp_path, embedder):
    corpus = _corpus(tmp_path, falcon=None)
    rules = tmp_path / "access.yaml"
    rules.write_text('- title: "salar*"\n  groups: [finance]\n', encoding="utf-8")
    index = tmp_path / "index"
    build_index(corpus, index, embedder, access=AccessMap.load(rules))
    manifest = read_manifest(index)
    assert manifest.access_map["path"] == str(rules.resolve()) and manifest.access_map["rules"] == 1
    assert len(manifest.access_map["sha256"]) == 64
    published = manifest.version
    with pytest.raises(AccessWidened, match=r"salaries: \[finance\] -> public"):
        build_index(corpus, index, embedder)  # the map forgotten
    rules.write_text('- title: "nothing*"\n  groups: [finance]\n', encoding="utf-8")
    with pytest.raises(AccessWidened, match="salaries"):
        build_index(corpus, index, embedder, access=AccessMap.load(rules))  # its rule gone
    assert current_version(index) == published
    # The command line refuses too, and publishes with --allow-wider-access (audited).
    from rolesearch.cli.main import app

    runner = CliRunner()
    base = ["ingest", "--corpus", str(corpus), "--index", str(index)]
    r = runner.invoke(app, base)
    assert r.exit_code == 1 and "salaries: [finance] -> public" in r.output and current_version(index) == published
    r = runner.invoke(app, [*base, "--allow-wider-access"])
    assert r.exit_code == 0, r.output
    assert read_manifest(index).articles["salaries"]["access"] == [] and read_manifest(index).access_map is None
    assert read_audit(index)[-1]["action"] == "ingest"


def test_a_reindex_on_a_server_without_the_map_fails_and_serves_on(tmp_path, embedder):
    import time

    corpus = _corpus(tmp_path, falcon=None)
    rules = tmp_path / "access.yaml"
    rules.write_text('- title: "salar*"\n  groups: [finance]\n', encoding="utf-8")
    build_index(corpus, tmp_path / "index", embedder, access=AccessMap.load(rules))
    published = current_version(tmp_path / "index")
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with TestClient(_app(tmp_path, embedder, admin_token=ADMIN, auth="off")) as c:  # no ROLESEARCH_ACCESS_MAP_FILE
        assert c.post("/admin/reindex", headers=auth).status_code == 202
        deadline = time.monotonic() + 60
        while (status := c.get("/admin/reindex", headers=auth).json())["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert status["state"] == "failed" and "salaries: [finance] -> public" in status["error"]
    assert current_version(tmp_path / "index") == published


def test_an_empty_map_is_an_error(tmp_path):
    for text in ("", "# nothing yet\n", "[]\n"):
        (tmp_path / "map.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(AccessMapError, match="has no rules"):
            AccessMap.load(tmp_path / "map.yaml")


@pytest.mark.parametrize("front", ["access:\n", "access: []\n", "access: ''\n", "acess: [hr]\n", "groups: [hr]\n",
                                   "Access_: [hr]\n"])
def test_empty_or_misspelt_access_skips_the_article_never_public(tmp_path, front):
    from rolesearch.ingest.sources import read_sources
    from rolesearch.ingest.sources.folder import FolderSource

    corpus = _corpus(tmp_path, falcon=PUBLIC_FALCON.replace("---\n", "---\n" + front, 1))
    articles, skipped, _ = read_sources([FolderSource(str(corpus))])
    assert "falcon" not in {a.id for a in articles}
    [reason] = [s["reason"] for s in skipped if s["path"] == "falcon.md"]
    assert "access" in reason


# --- identity headers and peers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def restricted_index(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("restricted")
    build_index(_corpus(root, SECRET_FALCON), root / "index", embedder)
    return root


def test_a_repeated_identity_header_is_a_400(restricted_index, embedder):
    app = _app(restricted_index, embedder, auth="proxy", trusted_proxies="10.0.0.0/24")
    with TestClient(app, client=("10.0.0.7", 1)) as c:
        for headers in ([("X-Forwarded-User", "ann"), ("X-Forwarded-Groups", "staff"), ("X-Forwarded-Groups", "hr")],
                        [("X-Forwarded-User", "eve"), ("X-Forwarded-User", "ann"), ("X-Forwarded-Groups", "hr")]):
            r = c.get("/search", params={"q": "falcon"}, headers=headers)
            assert r.status_code == 400 and "sent 2 times" in r.json()["detail"], r.text
        ok = c.get("/healthz", headers={"X-Forwarded-User": "ann", "X-Forwarded-Groups": "staff, hr"})
        assert ok.status_code == 200 and ok.json()["articles"] == 3
    tokens = restricted_index / "tokens.json"
    token = add_token(tokens, "hr", ["hr"])
    with TestClient(_app(restricted_index, embedder, auth="token", auth_tokens_file=tokens)) as c:
        r = c.get("/healthz", headers=[("Authorization", "Bearer nope"), ("Authorization", f"Bearer {token}")])
        assert r.status_code == 400


def test_trusted_proxies_with_host_bits_are_refused():
    with pytest.raises(ValidationError, match="has host bits set"):
        Settings(auth="proxy", trusted_proxies="10.0.0.5/8")
    assert [str(n) for n in Settings(trusted_proxies="10.0.0.5, 10.0.0.0/8").trusted_proxies] == \
        ["10.0.0.5/32", "10.0.0.0/8"]


def test_a_peer_address_taken_from_x_forwarded_for_is_refused(restricted_index, embedder):
    # What Ray Serve's proxy (or uvicorn without --no-proxy-headers) does for a loopback client: the peer
    # becomes the address the client wrote in X-Forwarded-For.
    app = _app(restricted_index, embedder, auth="proxy", trusted_proxies="10.0.0.5")
    with TestClient(app, client=("10.0.0.5", 1)) as c:
        for forwarded in ("10.0.0.5", "10.0.0.5:443, 127.0.0.1", "1.2.3.4, 10.0.0.5"):
            r = c.get("/healthz", headers={"X-Forwarded-For": forwarded, "X-Forwarded-Groups": "hr"})
            assert r.status_code == 403 and "X-Forwarded-For" in r.json()["detail"], forwarded
        # A real proxy names the browser in X-Forwarded-For, not itself: believed.
        r = c.get("/healthz", headers={"X-Forwarded-For": "192.168.7.7", "X-Forwarded-Groups": "hr"})
        assert r.status_code == 200 and r.json()["articles"] == 3


# --- what every reader may see: /metrics, /readyz, caching ------------------------------------------------


def test_metrics_and_readyz_carry_no_counts_and_responses_are_private(restricted_index, embedder):
    with TestClient(_app(restricted_index, embedder, auth="token",
                         auth_tokens_file=restricted_index / "none.json")) as c:
        metrics = c.get("/metrics").text
        assert "rolesearch_index_articles" not in metrics and "rolesearch_index_passages" not in metrics
        assert set(c.get("/readyz").json()) == {"status", "index_version"}
        for path in ("/search?q=falcon", "/healthz", "/articles", "/", "/metrics"):
            r = c.get(path)
            assert r.headers["cache-control"] == "private", path
            vary = {v.strip().lower() for v in r.headers["vary"].split(",")}
            assert {"authorization", "x-forwarded-user", "x-forwarded-groups"} <= vary, path


# --- ROLESEARCH_AUTH left unset -------------------------------------------------------------------------


def test_auth_unset_over_restricted_articles_serves_public_only_and_warns(restricted_index, embedder, caplog):
    with caplog.at_level(logging.WARNING, logger="rolesearch.api.service"), \
            TestClient(_app(restricted_index, embedder)) as c:
        assert c.get("/healthz").json()["articles"] == 2
        assert "falcon" not in {h["article_id"] for h in c.get("/search", params={"q": "Falcon churn"}).json()["hits"]}
        assert c.get("/articles/falcon").status_code == 404
    assert "holds 1 restricted article(s) but ROLESEARCH_AUTH is not set" in caplog.text
    with TestClient(_app(restricted_index, embedder, auth="off")) as c:  # said on purpose: everyone reads all
        assert c.get("/healthz").json()["articles"] == 3


def test_auth_unset_is_told_apart_from_auth_off_in_the_environment(monkeypatch):
    monkeypatch.delenv("ROLESEARCH_AUTH", raising=False)
    assert "auth" not in Settings().model_fields_set
    monkeypatch.setenv("ROLESEARCH_AUTH", "off")
    assert "auth" in Settings().model_fields_set
    assert "auth" in Settings().model_copy(update={"port": 1}).model_fields_set  # as serve --ray copies them


# --- Confluence ancestors --------------------------------------------------------------------------------


def test_confluence_pages_inherit_a_restricted_ancestor_and_never_show_its_title_wider(tmp_path):
    from rolesearch.ingest.sources import read_sources
    from rolesearch.ingest.sources.confluence import ConfluenceSource

    rules = tmp_path / "access.yaml"
    # "Engineering Roles" is restricted to eng; "ML Engineer" below it has groups of its own (staff).
    rules.write_text('- title: "Engineering Roles"\n  groups: [eng]\n- title: "ML Engineer"\n  groups: [staff]\n',
                     encoding="utf-8")
    articles, skipped, _ = read_sources([ConfluenceSource(str(DATA / "confluence" / "ROLES"))],
                                        AccessMap.load(rules))
    by_title = {a.title: a for a in articles}
    assert skipped == []
    assert by_title["ML Roles Home"].access == ()
    assert by_title["Engineering Roles"].access == ("eng",)
    mlops = by_title["MLOps Engineer"]  # no groups of its own: its parent's
    assert mlops.access == ("eng",) and mlops.section_prefix == ("ML Roles Home", "Engineering Roles")
    mle = by_title["ML Engineer"]  # staff may not read "Engineering Roles": its title is left out
    assert mle.access == ("staff",) and mle.section_prefix == ("ML Roles Home",)
    assert "Engineering Roles" not in json.dumps([mle.section_prefix, mle.meta.get("title")])
