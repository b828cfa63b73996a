"""GET /readyz: 200 only once an index is loaded and searches can be answered."""

from __future__ import annotations

from fastapi import APIRouter

from rolesearch.api.deps import SearcherDep
from rolesearch.api.models import ReadyResponse

router = APIRouter(tags=["operations"])


@router.get("/readyz", response_model=ReadyResponse, summary="Readiness: 503 until the index is loaded")
def readyz(searcher: SearcherDep) -> ReadyResponse:
    return ReadyResponse(status="ready", index_version=searcher.index.version)
