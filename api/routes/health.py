"""GET /healthz: liveness, with the served index version and its size."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter

from rolesearch.api.deps import CallerDep, ServiceDep, SyncerDep
from rolesearch.api.models import HealthResponse
from rolesearch.api.sync import sync_out
from rolesearch.search.scope import counts_in_scope

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness and the served index")
def healthz(service: ServiceDep, caller: CallerDep, syncer: SyncerDep) -> HealthResponse:
    searcher = service.searcher
    m = searcher.index.manifest if searcher else None
    # Counted over what the caller may read: the totals would tell that restricted articles exist.
    articles, passages = counts_in_scope(m.articles, caller.reader) if m else (0, 0)
    return HealthResponse(
        status="ok" if m else "no-index",
        index_version=m.version if m else None,
        built_at=m.built_at if m else None,
        articles=articles,
        passages=passages,
        model=service.settings.model,
        loaded_at=_iso(service.loaded_at),
        reload_error=service.reload_error,
        sync=sync_out(syncer) if syncer.interval > 0 or syncer.status.state != "idle" else None,
    )


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")
