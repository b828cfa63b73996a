"""POST and GET /admin/reindex: run the incremental ingest inside the server and follow it."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from rolesearch.api.deps import AdminDep, ReindexerDep, ServiceDep
from rolesearch.api.models import ErrorResponse, ReindexResponse, RollbackRequest, RollbackResponse
from rolesearch.api.reindex import ReindexRunning
from rolesearch.store.access_change import AccessWidened
from rolesearch.store.manifest import IndexBusy, IndexNotFound, StoreError
from rolesearch.store.versions import VersionInfo, list_versions, rollback

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


@router.get("/versions", response_model=list[VersionInfo], summary="The kept index versions, oldest first")
def versions(service: ServiceDep) -> list[VersionInfo]:
    return list_versions(service.settings.index_dir)


@router.post("/rollback", response_model=RollbackResponse, summary="Publish a kept index version again",
             responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}, 422: {"model": ErrorResponse}})
async def rollback_to(req: RollbackRequest, service: ServiceDep, request: Request) -> RollbackResponse:
    s = service.settings
    peer = request.client.host if request.client else "unknown"
    try:
        previous = await run_in_threadpool(rollback, s.index_dir, req.version, s.model, req.allow_wider_access,
                                           f"admin API (admin token) from {peer}")
    except AccessWidened as exc:  # an older version's groups would let more readers in: refused unless forced
        raise HTTPException(409, str(exc).replace("--allow-wider-access", '"allow_wider_access": true')) from exc
    except IndexNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except IndexBusy as exc:
        raise HTTPException(409, str(exc)) from exc
    except StoreError as exc:  # incomplete, inconsistent, or built with another model
        raise HTTPException(422, str(exc)) from exc
    # Swap now in this process; other servers on the same index follow CURRENT at their next poll.
    await run_in_threadpool(service.reload)
    return RollbackResponse(published=req.version, previous=previous, versions=list_versions(s.index_dir))
