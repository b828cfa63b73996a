"""GET and POST /ask: who owns a duty, with evidence; or the best passage; or "not answered"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from api.deps import SearcherDep, ServiceDep
from api.models import AskResponse, SearchRequest
from api.responses import ask_response
from search.answers import ask

router = APIRouter(tags=["answers"])


async def _run(service: ServiceDep, searcher: SearcherDep, req: SearchRequest) -> AskResponse:
    # Answers are built from hybrid ranking; `mode` is accepted for symmetry with /search and ignored.
    # The roles are the ones the served searcher was built with, so a reload brings both together.
    result = await run_in_threadpool(ask, searcher, req.q, searcher.roles, service.settings.answer_config(), req.k)
    return ask_response(result, searcher.index.articles)


@router.get("/ask", response_model=AskResponse, summary="Answer a question: the owning roles with evidence")
async def ask_get(req: Annotated[SearchRequest, Query()], service: ServiceDep, searcher: SearcherDep) -> AskResponse:
    return await _run(service, searcher, req)


@router.post("/ask", response_model=AskResponse, summary="Answer a question (JSON body)")
async def ask_post(req: SearchRequest, service: ServiceDep, searcher: SearcherDep) -> AskResponse:
    return await _run(service, searcher, req)
