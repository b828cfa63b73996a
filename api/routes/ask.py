"""GET and POST /ask: who owns a duty, with evidence; or the best passage; or "not answered"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from rolesearch.api.auth import Caller
from rolesearch.api.deps import CallerDep, RecordingDep, SearcherDep, ServiceDep, peer_of
from rolesearch.api.models import AskResponse, SearchRequest
from rolesearch.api.recording import stamped
from rolesearch.api.responses import ask_response, facets_out
from rolesearch.search.answers import ask
from rolesearch.search.filters import Filters
from rolesearch.search.scope import passage_mask
from rolesearch.search.searcher import Searcher

router = APIRouter(tags=["answers"])


async def _run(service: ServiceDep, searcher: Searcher, req: SearchRequest, caller: Caller) -> AskResponse:
    # Answers are built from hybrid ranking; `mode` is accepted for symmetry with /search and ignored.
    # The roles are the ones the served searcher was built with, so a reload brings both together.
    # The same mask as /search: roles, evidence, the sentence and the abstention see only allowed passages.
    allow = passage_mask(searcher.index, caller.reader, Filters.of(req.article, req.tag, req.source))
    scope = passage_mask(searcher.index, caller.reader, Filters())  # BM25 statistics over what the caller may read
    depth = max(req.k, service.settings.facet_hits) if req.facets else req.k
    result = await run_in_threadpool(ask, searcher, req.q, searcher.roles, service.settings.answer_config(), depth,
                                     allow, scope)
    facets = facets_out(result.result.hits, searcher.index.articles) if req.facets else None
    result.result.hits = result.result.hits[:req.k]
    return ask_response(result, searcher.index.articles).model_copy(update={"facets": facets})


@router.get("/ask", response_model=AskResponse, summary="Answer a question: the owning roles with evidence")
async def ask_get(req: Annotated[SearchRequest, Query()], service: ServiceDep, searcher: SearcherDep,
                  caller: CallerDep, recording: RecordingDep, request: Request) -> AskResponse:
    resp = await _run(service, searcher, req, caller)
    return stamped(recording, "ask", req, resp, caller, peer_of(request))


@router.post("/ask", response_model=AskResponse, summary="Answer a question (JSON body)")
async def ask_post(req: SearchRequest, service: ServiceDep, searcher: SearcherDep, caller: CallerDep,
                   recording: RecordingDep, request: Request) -> AskResponse:
    resp = await _run(service, searcher, req, caller)
    return stamped(recording, "ask", req, resp, caller, peer_of(request))
