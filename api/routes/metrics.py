"""GET /metrics: Prometheus exposition of the app's own registry."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import Response

from rolesearch.api.deps import MetricsDep, ServiceDep, SyncerDep

router = APIRouter(tags=["operations"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
def metrics(service: ServiceDep, metrics: MetricsDep, syncer: SyncerDep) -> Response:
    searcher = service.searcher
    if searcher is not None and service.loaded_at is not None:
        # Read from the service at scrape time, so a reload by any path shows up.
        metrics.index_loaded(searcher.index, service.loaded_at)
    last = syncer.status.last_success_at
    metrics.sync_since_success.set(-1 if last is None else time.time() - last)
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
