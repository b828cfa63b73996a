"""POST and GET /admin/reindex: run the incremental ingest inside the server and follow it."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, HTTPException

from api.deps import AdminDep, ReindexerDep
from api.models import ErrorResponse, ReindexResponse
from api.reindex import ReindexRunning

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep],
                   responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}})


@router.post("/reindex", response_model=ReindexResponse, status_code=202,
             summary="Start an incremental reindex of the corpus in the background",
             responses={409: {"model": ErrorResponse}})
def start_reindex(reindexer: ReindexerDep) -> ReindexResponse:
    try:
        status = reindexer.start()
    except ReindexRunning as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return ReindexResponse(**asdict(status))


@router.get("/reindex", response_model=ReindexResponse, summary="Progress of the current or last reindex")
def reindex_status(reindexer: ReindexerDep) -> ReindexResponse:
    return ReindexResponse(**asdict(reindexer.status))
