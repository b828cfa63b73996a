"""From simulated visits to a question set: readers search, click and judge through the API; `rolesearch eval
--from-feedback` exports what they found and evaluates it; `rolesearch analytics` reports the same visits."""

from __future__ import annotations

import csv
import io
import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rolesearch.api.app import create_app
from rolesearch.api.tokens import add_token
from rolesearch.cli.main import app as cli
from rolesearch.search.evaluation import load_questions
from rolesearch.settings import Settings


def test_judged_and_clicked_searches_become_questions(small_index, embedder, tmp_path, monkeypatch):
    for name in ("ROLESEARCH_ANALYTICS_FILE", "ROLESEARCH_ANALYTICS", "ROLESEARCH_INDEX_DIR"):
        monkeypatch.delenv(name, raising=False)
    tokens = tmp_path / "tokens.json"
    token = {name: add_token(tokens, name, []) for name in ("alice", "bob", "carol", "dave")}
    settings = Settings(index_dir=small_index, auth="token", auth_tokens_file=tokens, access_log=False,
                        reload_interval=0)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        def visit(who: str, path: str, q: str) -> dict:
            r = c.get(path, params={"q": q}, headers={"Authorization": f"Bearer {token[who]}"})
            assert r.status_code == 200
            return r.json()

        def post(who: str, path: str, body: dict) -> None:
            assert c.post(path, json=body, headers={"Authorization": f"Bearer {token[who]}"}).status_code == 202

        # alice clicks the top hit, then asks again in other words at once: the click did not answer her.
        a = visit("alice", "/search", "who rolls back a bad model release?")
        post("alice", "/feedback/click", {"search_id": a["search_id"], "rank": 1})
        visit("alice", "/search", "model rollback owner")
        # bob clicks the top hit and is done.
        b = visit("bob", "/search", "who manages model versions?")
        post("bob", "/feedback/click", {"search_id": b["search_id"], "rank": 1})
        # carol judges the salary passage good and another hit bad.
        ca = visit("carol", "/ask", "what do ML engineers earn in New York?")
        ranks = {h["article_id"]: h["rank"] for h in reversed(ca["hits"])}
        good, bad = ranks["salaries"], ranks["rollback"]
        post("carol", "/feedback", {"search_id": ca["search_id"], "rank": good, "judgement": "up"})
        post("carol", "/feedback", {"search_id": ca["search_id"], "rank": bad, "judgement": "down"})
        # dave clicks the second hit and then judges it bad: never an answer.
        d = visit("dave", "/search", "who selects the input features?")
        post("dave", "/feedback/click", {"search_id": d["search_id"], "rank": 2})
        post("dave", "/feedback", {"search_id": d["search_id"], "rank": 2, "judgement": "down"})
        assert c.app.state.recording.recorder.flush()

    out = tmp_path / "feedback.jsonl"
    run = CliRunner().invoke(cli, ["eval", "--from-feedback", "--since", "1d", "--index", str(small_index),
                                   "--out", str(out), "--ranker", "all"])
    assert run.exit_code == 0, run.output
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [q["question"] for q in lines] == ["what do ML engineers earn in New York?", "who manages model versions?"]
    by_q = {q["question"]: q for q in lines}
    salary, versions = by_q["what do ML engineers earn in New York?"], by_q["who manages model versions?"]
    salary_hit = next(h for h in ca["hits"] if h["rank"] == good)
    assert salary["article"] == "salaries" and salary["answer"] in salary_hit["text"] and salary["evidence"] == "judged"
    assert salary["answer"].startswith("An ML engineer with four years of experience earns about $210,000")
    assert versions["article"] == b["hits"][0]["article_id"] and versions["answer"] in b["hits"][0]["text"]
    assert versions["evidence"] == "clicked"
    assert all(q["kind"] == "feedback" and q["id"].startswith("fb-") for q in lines)
    # The file is a question set like tests/data/questions.jsonl, and both rankers were scored on it.
    assert [q.question for q in load_questions(out)] == [q["question"] for q in lines]
    assert "2 questions written" in run.output and "1 clicked, then reformulated" in run.output
    assert "ours hybrid" in run.output and "baseline hybrid" in run.output

    report = CliRunner().invoke(cli, ["analytics", "--since", "1d", "--index", str(small_index), "--json",
                                      "--no-group"])
    assert report.exit_code == 0, report.output
    r = json.loads(report.output)
    assert (r["totals"]["searches"], r["totals"]["readers"], r["totals"]["clicked"]) == (5, 4, 3)
    assert r["judgements"] == {"up": 1, "down": 2}
    rows = list(csv.reader(io.StringIO(CliRunner().invoke(
        cli, ["analytics", "--since", "1d", "--index", str(small_index), "--csv", "--no-group"]).output)))
    assert rows[0] == ["section", "key", "field", "value"]
    assert ["total", "all", "searches", "5"] in rows and ["total", "all", "clicked", "3"] in rows
