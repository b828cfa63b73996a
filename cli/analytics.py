"""`rolesearch analytics`: what readers searched, opened and judged, as text, JSON or CSV.

The command reads the analytics file directly, so it shows everything in it (restricted articles' passage ids
included): whoever runs it can read the file anyway. The page /admin/analytics is the one that hides them.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer

from rolesearch.cli.app import app, fail, settings_from


def open_period(s, since: str):
    """The period's length in seconds and the analytics file opened for reading; a clear exit when either fails."""
    from rolesearch.analytics.database import AnalyticsUnavailable, open_for_reading
    from rolesearch.analytics.period import parse_period

    try:
        return parse_period(since), open_for_reading(s.analytics_path())
    except ValueError as exc:
        fail(str(exc), 2)
    except AnalyticsUnavailable as exc:
        fail(str(exc))


@app.command("analytics")
def analytics(
    since: str = typer.Option("7d", "--since", help="Period before now: 24h, 7d, 2w ..."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole report as JSON"),
    as_csv: bool = typer.Option(False, "--csv", help="Print section,key,field,value rows (per day, per version, "
                                "top queries, unanswered, wrong)"),
    group: bool = typer.Option(True, "--group/--no-group", help="Group unanswered wordings with the model"),
    top: int = typer.Option(20, "--top", min=1, help="Top queries and unanswered groups shown"),
    index: Optional[Path] = typer.Option(None, "--index", help="Index folder (the analytics file lies in it)"),
    file: Optional[Path] = typer.Option(None, "--file", help="The analytics file (default ROLESEARCH_ANALYTICS_FILE)"),
) -> None:
    """Searches per day, readers, latency, top and unanswered queries, click-through and MRR, answers judged wrong."""
    from rolesearch.analytics.grouping import embedding_grouper
    from rolesearch.analytics.report import build_report

    if as_json and as_csv:
        fail("give --json or --csv, not both", 2)
    s = settings_from(index_dir=index, analytics_file=file)
    seconds, conn = open_period(s, since)
    now = time.time()
    grouper = embedding_grouper(s.embedder()) if group else None
    report = build_report(conn, now - seconds, now + 1, top=top, grouper=grouper)
    conn.close()
    if as_json:
        typer.echo(json.dumps(asdict(report), indent=2, ensure_ascii=False))
    elif as_csv:
        _csv(report)
    else:
        _text(report, since)


def _csv(report) -> None:
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["section", "key", "field", "value"])
    for section, rows in (("total", [report.totals]), ("day", report.days), ("version", report.versions)):
        for p in rows:
            for k, v in asdict(p).items():
                if k != "key":
                    w.writerow([section, p.key, k, "" if v is None else v])
    for q in report.top_queries:
        for k in ("searches", "unanswered", "clicked"):
            w.writerow(["query", q.query if q.query is not None else q.query_hash, k, getattr(q, k)])
    for g in report.unanswered:
        for q in g.wordings:
            w.writerow(["unanswered", q.query if q.query is not None else q.query_hash, "searches", q.unanswered])
    for x in report.wrong:
        w.writerow(["wrong", x.search_id, "query", x.query or ""])
        w.writerow(["wrong", x.search_id, "rank", "answer" if x.rank is None else x.rank])
        w.writerow(["wrong", x.search_id, "evidence", " ".join(x.evidence)])
        w.writerow(["wrong", x.search_id, "comment", x.comment or ""])


def _fmt(v, pattern: str = "{}") -> str:
    return "-" if v is None else pattern.format(v)


def _text(report, since: str) -> None:
    t = report.totals
    typer.echo(f"last {since}: {t.searches} searches, {t.readers} readers, latency p50 {_fmt(t.p50_ms)} ms / p95 "
               f"{_fmt(t.p95_ms)} ms, not answered {t.unanswered}, click-through {_fmt(t.ctr, '{:.3f}')}, MRR of "
               f"the first click {_fmt(t.mrr, '{:.3f}')}, judged up {report.judgements['up']} / down "
               f"{report.judgements['down']}")
    for title, rows in (("day", report.days), ("index version", report.versions)):
        typer.echo(f"\n{title:28s} {'searches':>8s} {'readers':>7s} {'p50 ms':>7s} {'p95 ms':>7s} {'unans.':>6s} "
                   f"{'CTR':>6s} {'MRR':>6s}")
        for p in rows:
            typer.echo(f"{p.key:28s} {p.searches:8d} {p.readers:7d} {_fmt(p.p50_ms):>7s} {_fmt(p.p95_ms):>7s} "
                       f"{p.unanswered:6d} {_fmt(p.ctr, '{:.3f}'):>6s} {_fmt(p.mrr, '{:.3f}'):>6s}")
    typer.echo("\ntop queries (searches, not answered, clicked)")
    for q in report.top_queries:
        typer.echo(f"  {q.searches:5d} {q.unanswered:5d} {q.clicked:5d}  {q.query or '(hash ' + q.query_hash + ')'}")
    typer.echo("\nwhat the wiki does not answer (near-duplicate wordings together)")
    for g in report.unanswered:
        typer.echo(f"  {g.searches:5d}  " + " | ".join(q.query or "(hash " + q.query_hash + ")" for q in g.wordings))
    typer.echo("\njudged wrong, newest first")
    for x in report.wrong:
        what = "the answer" if x.rank is None else f"hit {x.rank}"
        typer.echo(f"  {time.strftime('%Y-%m-%d %H:%M', time.gmtime(x.ts))}  {what}: {x.query or '(no text)'}  "
                   f"evidence {', '.join(x.evidence) or '-'}" + (f"  comment: {x.comment}" if x.comment else ""))
