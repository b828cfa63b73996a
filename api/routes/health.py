"""GET /healthz: liveness, with the served index version and its size."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter

from api.deps import ServiceDep
from api.models import HealthResponse

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness and the served index")
def healthz(service: ServiceDep) -> HealthResponse:
    searcher = service.searcher
    m = searcher.index.manifest if searcher else None
    return HealthResponse(
        status="ok" if m else "no-index",
        index_version=m.version if m else None,
        built_at=m.built_at if m else None,
        articles=len(m.articles) if m else 0,
        passages=m.passages if m else 0,
        model=service.settings.model,
        loaded_at=_iso(service.loaded_at),
        reload_error=service.reload_error,
    )


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")
