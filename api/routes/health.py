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
        sync=_sync_for(caller, syncer) if syncer.interval > 0 or syncer.status.state != "idle" else None,
    )


def _sync_for(caller, syncer):
    """The sync's status; for a caller who may not read everything, without the page count and the error's
    text, which can name restricted pages (a refused widening lists them). /admin/notify shows it whole."""
    out = sync_out(syncer)
    if caller.everything:
        return out
    return out.model_copy(update={"pages_changed": None,
                                  "error": "the last sync failed (the server log and /admin/notify say why)"
                                  if out.error else None})


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")
