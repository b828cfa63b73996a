"""POST /feedback (thumbs up or down on an answer or a hit) and POST /feedback/click (a hit opened)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from rolesearch.api.deps import CallerDep, RecordingDep, peer_of
from rolesearch.api.models import ClickRequest, ErrorResponse, FeedbackAccepted, FeedbackRequest
from rolesearch.api.recording import Recording

router = APIRouter(tags=["feedback"], responses={404: {"model": ErrorResponse}})


def _on(recording: Recording | None) -> Recording:
    if recording is None:
        raise HTTPException(404, "analytics is off (ROLESEARCH_ANALYTICS=off): feedback is not recorded")
    return recording


# The body is read by hand so that a JSON body sent as text/plain counts too: that is what navigator.sendBeacon
# can send from another origin (the wiki's page) without a CORS preflight, which a beacon cannot make.
# The schema names JSON only; the same object as text/plain is accepted too.
CLICK_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": ClickRequest.model_json_schema()}}}}


@router.post("/feedback/click", response_model=FeedbackAccepted, status_code=202, openapi_extra=CLICK_BODY,
             summary="Record that the reader opened a hit (the search page sends it with navigator.sendBeacon)",
             responses={422: {"model": ErrorResponse}})
async def click(request: Request, recording: RecordingDep, caller: CallerDep) -> FeedbackAccepted:
    try:
        req = ClickRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from exc
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
