"""POST /feedback (thumbs up or down on an answer or a hit) and POST /feedback/click (a hit opened)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from rolesearch.api.deps import CallerDep, RecordingDep, peer_of
from rolesearch.api.models import ClickRequest, ErrorResponse, FeedbackAccepted, FeedbackRequest
from rolesearch.api.recording import Recording

router = APIRouter(tags=["feedback"], responses={404: {"model": ErrorResponse}})


def _on(recording: Recording | None) -> Recording:
    if recording is None:
        raise HTTPException(404, "analytics is off (ROLESEARCH_ANALYTICS=off): feedback is not recorded")
    return recording


@router.post("/feedback/click", response_model=FeedbackAccepted, status_code=202,
             summary="Record that the reader opened a hit (the search page sends it with navigator.sendBeacon)")
async def click(req: ClickRequest, recording: RecordingDep, caller: CallerDep, request: Request) -> FeedbackAccepted:
    rec = _on(recording)
    return FeedbackAccepted(recorded=rec.click(req.search_id, req.rank, rec.reader(caller, peer_of(request))))


@router.post("/feedback", response_model=FeedbackAccepted, status_code=202,
             summary="Judge a search's answer (no rank) or one of its hits: up or down, with an optional comment")
async def feedback(req: FeedbackRequest, recording: RecordingDep, caller: CallerDep,
                   request: Request) -> FeedbackAccepted:
    rec = _on(recording)
    comment = req.comment.strip() if req.comment else None
    return FeedbackAccepted(recorded=rec.judge(req.search_id, req.rank, req.judgement == "up", comment,
                                               rec.reader(caller, peer_of(request))))
