"""POST /admin/notify: a wiki says which pages changed; the background sync fetches them soon."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from rolesearch.api.deps import NotifierDep, SyncerDep
from rolesearch.api.models import ErrorResponse, NotifyRequest, NotifyResponse
from rolesearch.api.sync import sync_out

log = logging.getLogger(__name__)

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[NotifierDep],
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}},
)


@router.post(
    "/notify",
    response_model=NotifyResponse,
    status_code=202,
    summary="Pages changed in the wiki: sync them soon (the admin token or the proxy's shared secret)",
)
def notify(req: NotifyRequest, syncer: SyncerDep) -> NotifyResponse:
    log.info("notified: %s of pages %s", req.event or "change", req.pages[:20])
    syncer.notify(req.pages)
    return NotifyResponse(queued=len(req.pages), sync=sync_out(syncer))
