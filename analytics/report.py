"""The aggregates of the analytics page and `rolesearch analytics`, read from the database over a period.

Click-through rate: the share of searches with at least one click. Mean reciprocal rank of the first click:
1 / rank of the earliest click, averaged over the searches that have one. A search is "not answered" when
/ask abstained, or when no /search hit reached the answer threshold (ROLESEARCH_ANSWER_MIN_DENSE).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

# Groups the unanswered queries' wordings: a list of texts -> lists of their positions, one list per group.
Grouper = Callable[[list[str]], list[list[int]]]


@dataclass
class Period:
    """A row of the time series (a day) or of the per-version table: searches, readers, latency, clicks."""

    key: str  # the day (YYYY-MM-DD, UTC) or the index version
    searches: int = 0
    readers: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    unanswered: int = 0
    clicked: int = 0
    ctr: float | None = None  # clicked / searches
    mrr: float | None = None  # mean 1/rank of the first click, over clicked searches


@dataclass
class QueryCount:
    """One query (by its keyed hash): how often it was asked, and how often not answered or clicked."""

    query: str | None  # None when query text is not kept
    query_hash: str
    searches: int
    unanswered: int
    clicked: int


@dataclass
class UnansweredGroup:
    """Near-duplicate wordings of a question the wiki did not answer, the most asked first."""

    wordings: list[QueryCount]
    searches: int


@dataclass
class WrongAnswer:
    """A thumbs down: on the answer (rank None) or on a hit, with the query and the evidence shown."""

    ts: float
    search_id: str
    query: str | None
    rank: int | None
    answer: str | None
    evidence: list[str]  # passage ids: the answer's evidence, or the judged hit
    comment: str | None
    index_version: str | None


@dataclass
class Report:
    """Everything the page shows for one period."""

    since: float
    until: float
    totals: Period
    days: list[Period] = field(default_factory=list)
    versions: list[Period] = field(default_factory=list)
    top_queries: list[QueryCount] = field(default_factory=list)
    unanswered: list[UnansweredGroup] = field(default_factory=list)
    wrong: list[WrongAnswer] = field(default_factory=list)
    judgements: dict[str, int] = field(default_factory=lambda: {"up": 0, "down": 0})


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of values, None when there are none."""
    if not values:
        return None
    s = sorted(values)
    return round(s[max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))], 1)


def day_of(ts: float) -> str:
    """The UTC day of a Unix time, YYYY-MM-DD."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d")


def _fill(period: Period, rows: list[sqlite3.Row], first_click: dict[str, int]) -> Period:
    latencies = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
    ranks = [first_click[r["id"]] for r in rows if r["id"] in first_click]
    period.searches = len(rows)
    period.readers = len({r["reader"] for r in rows if r["reader"]})
    period.p50_ms, period.p95_ms = percentile(latencies, 50), percentile(latencies, 95)
    period.unanswered = sum(1 for r in rows if not r["answered"])
    period.clicked = len(ranks)
    period.ctr = round(len(ranks) / len(rows), 4) if rows else None
    period.mrr = round(sum(1 / r for r in ranks) / len(ranks), 4) if ranks else None
    return period


# A reader's last judgement of one answer or hit (a comment sent after the thumb is a second row of the same).
LATEST_FEEDBACK = ("(SELECT * FROM feedback WHERE rowid IN (SELECT MAX(rowid) FROM feedback "
                   "GROUP BY search_id, COALESCE(rank, 0), COALESCE(reader, '')))")


def build_report(conn: sqlite3.Connection, since: float, until: float, top: int = 20, wrong: int = 50,
                 grouper: Grouper | None = None) -> Report:
    """The aggregates over searches made in [since, until) (Unix times); clicks and judgements of those searches."""
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT id, ts, query, query_hash, answered, latency_ms, index_version, reader "
                        "FROM searches WHERE ts >= ? AND ts < ? ORDER BY ts", (since, until)).fetchall()
    first_click: dict[str, int] = {}
    for c in conn.execute("SELECT c.search_id, c.rank FROM clicks c JOIN searches s ON s.id = c.search_id "
                          "WHERE s.ts >= ? AND s.ts < ? ORDER BY c.ts", (since, until)):
        first_click.setdefault(c["search_id"], c["rank"])
    report = Report(since, until, _fill(Period("all"), rows, first_click))

    by_day, by_version = defaultdict(list), defaultdict(list)
    for r in rows:
        by_day[day_of(r["ts"])].append(r)
        by_version[r["index_version"] or "?"].append(r)
    report.days = [_fill(Period(d), by_day[d], first_click) for d in sorted(by_day)]
    report.versions = [_fill(Period(v), by_version[v], first_click) for v in sorted(by_version)]

    queries: dict[str, QueryCount] = {}
    for r in rows:  # oldest first, so the latest wording of a hash is the one kept
        q = queries.setdefault(r["query_hash"], QueryCount(None, r["query_hash"], 0, 0, 0))
        q.query = r["query"] or q.query
        q.searches += 1
        q.unanswered += not r["answered"]
        q.clicked += r["id"] in first_click
    ranked = sorted(queries.values(), key=lambda q: (-q.searches, q.query or q.query_hash))
    report.top_queries = ranked[:top]
    report.unanswered = group_unanswered([q for q in ranked if q.unanswered], grouper)[:top]

    for j in conn.execute(f"SELECT judgement, COUNT(*) AS n FROM {LATEST_FEEDBACK} f "
                          "JOIN searches s ON s.id = f.search_id "
                          "WHERE s.ts >= ? AND s.ts < ? GROUP BY judgement", (since, until)):
        report.judgements["up" if j["judgement"] > 0 else "down"] = j["n"]
    report.wrong = wrong_answers(conn, since, until, wrong)
    return report


def group_unanswered(queries: list[QueryCount], grouper: Grouper | None) -> list[UnansweredGroup]:
    """Unanswered queries as groups of near-duplicate wordings (one group per query without a grouper)."""
    with_text = [q for q in queries if q.query]
    groups = grouper([q.query for q in with_text]) if grouper and with_text else [[i] for i in range(len(with_text))]
    out = [UnansweredGroup(sorted((with_text[i] for i in g), key=lambda q: -q.unanswered),
                           sum(with_text[i].unanswered for i in g)) for g in groups]
    out += [UnansweredGroup([q], q.unanswered) for q in queries if not q.query]  # only hashes kept
    return sorted(out, key=lambda g: -g.searches)


def wrong_answers(conn: sqlite3.Connection, since: float, until: float, limit: int) -> list[WrongAnswer]:
    """Thumbs down on answers and hits of searches in the period, newest first."""
    out = []
    for r in conn.execute("SELECT f.ts, f.search_id, f.rank, f.comment, s.query, s.answer, s.evidence, s.hits, "
                          f"s.index_version FROM {LATEST_FEEDBACK} f JOIN searches s ON s.id = f.search_id "
                          "WHERE f.judgement < 0 AND s.ts >= ? AND s.ts < ? ORDER BY f.ts DESC LIMIT ?",
                          (since, until, limit)):
        hits = json.loads(r["hits"])
        if r["rank"] is None:
            evidence = json.loads(r["evidence"]) if r["evidence"] else hits[:3]
        else:
            evidence = hits[r["rank"] - 1:r["rank"]]
        out.append(WrongAnswer(r["ts"], r["search_id"], r["query"], r["rank"],
                               r["answer"] if r["rank"] is None else None, evidence, r["comment"], r["index_version"]))
    return out
