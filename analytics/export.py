"""From readers' behaviour to a question set: judged and clicked searches as JSONL questions.

A search becomes a question when a reader judged one of its hits good, or clicked a hit and did not search
again with other words within a minute (a reformulation says the click did not answer). The passage of that
hit is the answer; a hit judged bad is never one. The lines have the format of tests/data/questions.jsonl
(search/evaluation.py load_questions), kind "feedback".
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from rolesearch.analytics.identity import normalize_query

REFORMULATION_S = 60.0
MAX_ANSWER_CHARS = 150
_SENTENCE = re.compile(r"\S.{19,149}?[.!?](?=\s|$)", re.DOTALL)  # a first sentence of 20 to 150 characters


@dataclass
class FeedbackQuestions:
    """The exported questions (dicts, one JSONL line each) and what was left out, by reason."""

    questions: list[dict] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def jsonl(self) -> str:
        return "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in self.questions)


def answer_span(text: str) -> str:
    """A short piece of the passage that identifies it: its first sentence, or its first words (a substring)."""
    m = _SENTENCE.search(text)
    if m:
        return m.group(0).strip()
    head = text.strip()[:MAX_ANSWER_CHARS]
    cut = head.rfind(" ") if len(text.strip()) > MAX_ANSWER_CHARS else -1
    return (head[:cut] if cut > 20 else head).strip()


def _reformulated(search: sqlite3.Row, click_ts: float, later: list[sqlite3.Row]) -> bool:
    """Whether the same reader searched again, in other words, within a minute of the click."""
    return any(s["reader"] == search["reader"] and s["query_hash"] != search["query_hash"]
               and click_ts <= s["ts"] <= click_ts + REFORMULATION_S for s in later)


def feedback_questions(conn: sqlite3.Connection, since: float, until: float,
                       passage_text: Callable[[str], str | None]) -> FeedbackQuestions:
    """The question set from searches made in [since, until); passage_text(passage_id) reads the served index."""
    conn.row_factory = sqlite3.Row
    out = FeedbackQuestions()

    def skip(reason: str) -> None:
        out.skipped[reason] = out.skipped.get(reason, 0) + 1

    searches = {r["id"]: r for r in conn.execute(
        "SELECT id, ts, query, query_hash, hits, reader FROM searches WHERE ts >= ? AND ts < ? ORDER BY ts",
        (since, until))}
    by_reader: dict[str | None, list[sqlite3.Row]] = {}
    for s in searches.values():
        by_reader.setdefault(s["reader"], []).append(s)
    judged: dict[tuple[str, int], int] = {}
    for f in conn.execute("SELECT search_id, rank, judgement FROM feedback WHERE rank IS NOT NULL ORDER BY ts"):
        judged[(f["search_id"], f["rank"])] = f["judgement"]  # the reader's last word counts
    positives: list[tuple[str, int, str]] = [(sid, rank, "judged") for (sid, rank), j in judged.items() if j > 0]
    for c in conn.execute("SELECT search_id, rank, ts FROM clicks ORDER BY ts"):
        s = searches.get(c["search_id"])
        if s is None or judged.get((c["search_id"], c["rank"]), 0) != 0:
            continue
        if s["reader"] is not None and _reformulated(s, c["ts"], by_reader[s["reader"]]):
            skip("clicked, then reformulated")
            continue
        positives.append((c["search_id"], c["rank"], "clicked"))

    questions: dict[str, dict] = {}
    for sid, rank, how in positives:
        s = searches.get(sid)
        if s is None:
            continue  # a search outside the period
        if s["query"] is None:
            skip("no query text kept")
            continue
        hits = json.loads(s["hits"])
        if not 1 <= rank <= len(hits):
            skip("rank not among the hits")
            continue
        pid = hits[rank - 1]
        text = passage_text(pid)
        if not text:
            skip("passage not in the served index")
            continue
        article = pid.rpartition(":")[0] or None
        span = {"answer": answer_span(text), "article": article}
        key = normalize_query(s["query"])
        q = questions.get(key)
        if q is None:
            qid = "fb-" + hashlib.sha256(key.encode()).hexdigest()[:10]
            questions[key] = {"id": qid, "question": s["query"], **span, "kind": "feedback", "evidence": how}
        elif span != {"answer": q["answer"], "article": q["article"]} and span not in q.setdefault("also", []):
            q["also"].append(span)
    out.questions = list(questions.values())
    return out
