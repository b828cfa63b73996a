"""Search analytics on a seeded database: the aggregates, near-duplicate grouping, pruning, the writer's drops."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time

import pytest

from rolesearch.analytics.database import open_database, open_for_reading, prune
from rolesearch.analytics.events import INSERTS, Click, Judgement, SearchEvent
from rolesearch.analytics.export import answer_span
from rolesearch.analytics.grouping import embedding_grouper, group_vectors
from rolesearch.analytics.identity import keyed_hash, normalize_query
from rolesearch.analytics.period import parse_period
from rolesearch.analytics.recorder import Recorder
from rolesearch.analytics.report import build_report
from tests.conftest import wait_for

SECRET = b"test-secret"
DAY1 = dt.datetime(2026, 1, 1, 9, tzinfo=dt.timezone.utc).timestamp()
DAY2 = DAY1 + 86400


def search(sid: str, ts: float, query: str, latency: float, answered: bool, version: str, reader: str,
           endpoint: str = "search", evidence: tuple[str, ...] = (), answer: str | None = None) -> SearchEvent:
    hits = tuple(f"art-{i}:{i}" for i in range(1, 6))
    return SearchEvent(sid, ts, endpoint, query, keyed_hash(SECRET, normalize_query(query)), "hybrid", {}, hits,
                       answered, (not answered) if endpoint == "ask" else None, answer, evidence, latency, version,
                       keyed_hash(SECRET, reader))


def insert(conn: sqlite3.Connection, *events) -> None:
    for e in events:
        conn.execute(INSERTS[e.table], e.row())


@pytest.fixture
def seeded(tmp_path):
    """Two days, three readers, two index versions; clicks, judgements, and one search before the period."""
    path = tmp_path / "analytics.sqlite3"
    conn = open_database(path)
    a, c = (keyed_hash(SECRET, r) for r in ("alice", "carol"))
    insert(conn,
           search("old", DAY1 - 3 * 86400, "who owns rollback", 5, True, "v0", "alice"),
           Click("old", DAY1 - 3 * 86400 + 1, 4, a),
           # day 1, version v1
           search("s1", DAY1, "who owns rollback", 10, True, "v1", "alice"),
           Click("s1", DAY1 + 5, 1, a), Click("s1", DAY1 + 9, 3, a),  # the first click counts: rank 1
           search("s2", DAY1 + 60, "salary of a data janitor", 20, False, "v1", "bob"),
           search("s3", DAY1 + 120, "Who owns   ROLLBACK", 30, True, "v1", "alice"),
           Click("s3", DAY1 + 125, 2, a),
           # day 2, version v2
           search("s4", DAY2, "who builds features", 40, True, "v2", "carol"),
           Click("s4", DAY2 + 3, 1, c),
           Judgement("s4", DAY2 + 4, 1, -1, "wrong article", c),
           search("s5", DAY2 + 60, "pay of a data janitor?", 100, False, "v2", "carol", endpoint="ask",
                  evidence=("art-2:2",), answer="Not answered."),
           Judgement("s5", DAY2 + 70, None, 1, None, c),
           Judgement("s5", DAY2 + 80, None, -1, "it does answer, badly", c),  # changed her mind: the last counts
           Judgement("s1", DAY1 + 30, 1, 1, None, a))
    conn.close()
    return path


def test_aggregates_per_day_per_version_and_overall(seeded):
    conn = open_for_reading(seeded)
    r = build_report(conn, DAY1 - 3600, DAY2 + 86400)
    t = r.totals
    assert (t.searches, t.readers, t.unanswered, t.clicked) == (5, 3, 2, 3)
    assert (t.p50_ms, t.p95_ms) == (30, 100)  # nearest rank over 10, 20, 30, 40, 100
    assert t.ctr == 0.6 and t.mrr == pytest.approx((1 + 1 / 2 + 1) / 3, abs=1e-4)
    days = {d.key: d for d in r.days}
    assert list(days) == ["2026-01-01", "2026-01-02"]
    d1, d2 = days["2026-01-01"], days["2026-01-02"]
    assert (d1.searches, d1.readers, d1.ctr, d1.mrr, d1.p50_ms) == (3, 2, round(2 / 3, 4), 0.75, 20)
    assert (d2.searches, d2.readers, d2.ctr, d2.mrr, d2.unanswered) == (2, 1, 0.5, 1.0, 1)
    assert [(v.key, v.searches, v.ctr, v.mrr) for v in r.versions] == [("v1", 3, round(2 / 3, 4), 0.75),
                                                                       ("v2", 2, 0.5, 1.0)]
    # The same query in other case and spacing counts as one; its latest wording is shown.
    top = r.top_queries[0]
    assert (top.query, top.searches, top.clicked) == ("Who owns   ROLLBACK", 2, 2)
    assert r.judgements == {"up": 1, "down": 2}
    # Judged wrong, newest first: the answer of s5 (its evidence), then hit 1 of s4.
    assert [(w.search_id, w.rank, w.evidence, w.comment) for w in r.wrong] == [
        ("s5", None, ["art-2:2"], "it does answer, badly"), ("s4", 1, ["art-1:1"], "wrong article")]
    assert r.wrong[0].answer == "Not answered." and r.wrong[1].answer is None


def test_a_period_leaves_out_older_searches_and_their_clicks(seeded):
    r = build_report(open_for_reading(seeded), DAY2, DAY2 + 86400)
    assert r.totals.searches == 2 and [d.key for d in r.days] == ["2026-01-02"]
    assert r.judgements == {"up": 0, "down": 2}
    everything = build_report(open_for_reading(seeded), 0, DAY2 + 86400)
    assert everything.totals.searches == 6 and everything.totals.mrr == pytest.approx((1 + 1 / 2 + 1 + 1 / 4) / 4)


def test_unanswered_queries_grouped_by_the_grouper(seeded):
    conn = open_for_reading(seeded)
    alone = build_report(conn, DAY1 - 3600, DAY2 + 86400)
    assert [[q.query for q in g.wordings] for g in alone.unanswered] == [["pay of a data janitor?"],
                                                                       ["salary of a data janitor"]]
    together = build_report(conn, DAY1 - 3600, DAY2 + 86400, grouper=lambda texts: [list(range(len(texts)))])
    assert len(together.unanswered) == 1 and together.unanswered[0].searches == 2


def test_near_duplicate_wordings_group_with_the_model(embedder):
    texts = ["how much does a data janitor earn", "salary of a data janitor", "data janitor pay",
             "who owns model rollback?", "who is responsible for rolling back a model"]
    groups = embedding_grouper(embedder)(texts)
    as_sets = sorted(sorted(g) for g in groups)
    assert [0, 1, 2] in as_sets and [3, 4] in as_sets, groups
    assert group_vectors(embedder.encode(texts[:2]), threshold=1.01) == [[0], [1]]  # nothing joins above 1


def test_prune_keeps_the_retention_window(seeded):
    conn = open_database(seeded)
    assert prune(conn, DAY1 - 3600) == 2  # the old search and its click
    assert conn.execute("SELECT COUNT(*) FROM searches").fetchone()[0] == 5
    assert conn.execute("SELECT COUNT(*) FROM clicks WHERE search_id = 'old'").fetchone()[0] == 0


def test_the_writer_batches_and_counts_drops_when_the_database_is_locked(tmp_path):
    written, dropped = {}, {}
    path = tmp_path / "a.sqlite3"
    rec = Recorder(path, 90, busy_ms=50, on_written=lambda k, n: written.__setitem__(k, written.get(k, 0) + n),
                   on_dropped=lambda k, n: dropped.__setitem__(k, dropped.get(k, 0) + n))
    rec.start()
    try:
        for i in range(3):
            assert rec.record(search(f"w{i}", DAY1 + i, "q", 1, True, "v", "alice"))
        assert rec.flush()
        assert written == {"searches": 3} and not dropped
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
        rec.record(Click("w0", DAY1 + 5, 1, None))
        assert rec.flush()
        assert dropped == {"locked": 1}
        blocker.execute("ROLLBACK")
        rec.record(Click("w0", DAY1 + 6, 1, None))
        assert rec.flush() and written == {"searches": 3, "clicks": 1}
    finally:
        rec.close()


def test_a_full_queue_drops_instead_of_waiting(tmp_path):
    dropped = []
    rec = Recorder(tmp_path / "a.sqlite3", 90, queue_max=2, on_dropped=lambda k, n: dropped.append(k))  # not started
    assert [rec.record(Click("x", 0, 1, None)) for _ in range(3)] == [True, True, False]
    assert dropped == ["queue_full"]


def test_periods_and_answer_spans():
    assert parse_period("7d") == 7 * 86400 and parse_period("24h") == 86400 and parse_period("2w") == 14 * 86400
    for bad in ("7", "d", "0d", "7y", "-1d"):
        with pytest.raises(ValueError, match="e.g. 7d"):
            parse_period(bad)
    text = "Model versioning and rollback: the MLOps engineer manages model versions. Then more text follows here."
    assert answer_span(text) == "Model versioning and rollback: the MLOps engineer manages model versions."
    long = "word " * 80
    assert answer_span(long) in long and len(answer_span(long)) <= 150


def test_a_full_disk_drops_the_batch_and_the_writer_goes_on(tmp_path):
    dropped, now = {}, time.time()  # rows of today: the writer prunes rows past the retention when it starts
    rec = Recorder(tmp_path / "a.sqlite3", 90, on_dropped=lambda k, n: dropped.__setitem__(k, dropped.get(k, 0) + n))
    rec.start()
    try:
        rec.record(search("f0", now, "q", 1, True, "v", "alice"))
        assert rec.flush()
        conn = rec._connection()  # the writer's own connection: cap the file at its size, as a full disk would
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        for i in range(50):
            rec.record(search(f"f{i + 1}", now + i, "x" * 1000, 1, True, "v", "alice"))
        assert rec.flush() and dropped == {"disk_full": 50}
        conn.execute("PRAGMA max_page_count = 1073741823")
        rec.record(search("after", now, "q", 1, True, "v", "alice"))
        assert rec.flush() and dropped == {"disk_full": 50}
    finally:
        rec.close()
    assert [r[0] for r in sqlite3.connect(tmp_path / "a.sqlite3").execute("SELECT id FROM searches ORDER BY id")] == \
        ["after", "f0"]


def test_the_writer_prunes_past_the_retention_when_it_starts(tmp_path):
    path, now = tmp_path / "a.sqlite3", time.time()
    conn = open_database(path)
    insert(conn, search("old", now - 31 * 86400, "q", 1, True, "v", "alice"),
           search("new", now - 29 * 86400, "q", 1, True, "v", "alice"))
    conn.close()
    rec = Recorder(path, retention_days=30)
    rec.start()
    try:
        wait_for(lambda: _ids(path) == ["new"], 5, "the old row pruned")
    finally:
        rec.close()


def _ids(path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM searches ORDER BY id")]
    finally:
        conn.close()
