"""GET /admin/analytics: the search-analytics page for the wiki's editors (admin token)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from rolesearch.analytics.database import AnalyticsUnavailable, open_for_reading
from rolesearch.analytics.grouping import embedding_grouper
from rolesearch.analytics.period import parse_period
from rolesearch.analytics.report import build_report
from rolesearch.api.analytics_view import page_context, viewer
from rolesearch.api.deps import AdminDep, ServiceDep, TemplatesDep

router = APIRouter(prefix="/admin", dependencies=[AdminDep], include_in_schema=False)
PERIODS = ("1d", "7d", "30d", "90d")


@router.get("/analytics", response_class=HTMLResponse)
async def analytics_page(request: Request, service: ServiceDep, templates: TemplatesDep,
                         since: Annotated[str, Query(pattern=r"^[1-9][0-9]{0,4}[mhdw]$")] = "7d") -> HTMLResponse:
    settings = service.settings
    reader, reads_as = viewer(request, settings)
    searcher = service.searcher
    now = time.time()

    def build() -> dict:
        try:
            conn = open_for_reading(settings.analytics_path())
        except AnalyticsUnavailable as exc:
            return {"unavailable": str(exc)}
        try:
            report = build_report(conn, now - parse_period(since), now + 1, grouper=embedding_grouper(service.embedder))
        finally:
            conn.close()
        return page_context(report, searcher.index if searcher else None, reader)

    context = await run_in_threadpool(build)
    return templates.TemplateResponse(request, "analytics.html", {
        **context, "since": since, "periods": PERIODS, "reads_as": reads_as,
        "analytics_on": settings.analytics == "on", "query_text": settings.analytics_query_text,
        "retention_days": settings.analytics_retention_days})
