"""The analytics page's view of a report: plots, and evidence shown only to admins whose groups may read it.

The admin token itself carries no groups. Who the viewer reads as follows ROLESEARCH_AUTH: off, every article;
proxy, the groups the proxy names for the request (none: public articles only); token, public articles only
(the Authorization header holds the admin token, not a reader's). A passage of any other article is shown
as "a restricted article", without its id, title or text; so is an answer drawn from one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request

from rolesearch.analytics.passages import find_passage
from rolesearch.analytics.report import Report, WrongAnswer
from rolesearch.analytics.svg import bar_chart, line_chart
from rolesearch.api.auth import ANONYMOUS, CallerRefused, proxy_caller
from rolesearch.search.access import EVERYONE, Reader, can_read
from rolesearch.search.index import SearchIndex
from rolesearch.settings import Settings


def viewer(request: Request, settings: Settings) -> tuple[Reader, str]:
    """What the admin viewing the page may read, and how the page says so."""
    if settings.auth == "off":
        return EVERYONE, "every article (authentication is off, every article is public)"
    if settings.auth == "proxy":
        try:
            caller = proxy_caller(request.client.host if request.client else None,
                                  request.headers.get(settings.auth_user_header),
                                  request.headers.get(settings.auth_groups_header), settings.trusted_proxies)
        except CallerRefused:
            caller = ANONYMOUS
        groups = ", ".join(sorted(caller.groups))
        return caller.reader, f"the groups your proxy names: {groups}" if groups else "public articles only"
    return ANONYMOUS.reader, "public articles only (the admin token names no reader groups)"


@dataclass
class EvidenceItem:
    """One evidence passage as the viewer may see it: title, section, text and link, or restricted."""

    restricted: bool
    title: str = ""
    section: str = ""
    text: str = ""
    url: str = ""


def evidence_items(index: SearchIndex | None, reader: Reader, pids: list[str]) -> list[EvidenceItem]:
    """The evidence of a judgement for this viewer; a passage not in the served index reads as restricted
    (its article's access is unknown now), unless the viewer reads everything."""
    out = []
    for pid in pids:
        aid = pid.rpartition(":")[0]
        meta = index.articles.get(aid) if index is not None else None
        if meta is None or not can_read(meta.get("access"), reader):
            out.append(EvidenceItem(True, title=pid if reader.everything else ""))
            continue
        p = find_passage(index.passages, pid)
        text = p.text if p is not None else ""
        out.append(EvidenceItem(False, meta.get("title") or aid, " › ".join(p.section) if p is not None else "",
                                text[:300] + ("…" if len(text) > 300 else ""), f"/articles/{quote(aid, safe='')}"))
    return out


@dataclass
class WrongView:
    """A thumbs down as the page shows it."""

    judged: WrongAnswer
    when: str  # UTC, to the minute
    evidence: list[EvidenceItem]
    answer: str | None  # None when the answer drew on a passage the viewer may not read


def page_context(report: Report, index: SearchIndex | None, reader: Reader) -> dict:
    """Everything the template needs: the report, the plots, the judged-wrong answers as this viewer sees them."""
    days = [d.key for d in report.days]
    wrong = []
    for w in report.wrong:
        items = evidence_items(index, reader, w.evidence)
        when = dt.datetime.fromtimestamp(w.ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        wrong.append(WrongView(w, when, items, None if any(i.restricted for i in items) else w.answer))
    return {
        "report": report,
        "wrong": wrong,
        "plot_searches": bar_chart("Searches per day", days, [d.searches for d in report.days]),
        "plot_latency": line_chart("Latency per day, milliseconds", days,
                                   {"p50": [d.p50_ms for d in report.days], "p95": [d.p95_ms for d in report.days]},
                                   fmt=lambda v: f"{v:.0f}"),
        "plot_clicks": line_chart("Click-through rate and MRR of the first click per day", days,
                                  {"click-through": [d.ctr for d in report.days],
                                   "MRR first click": [d.mrr for d in report.days]}),
    }
