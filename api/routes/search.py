"""GET and POST /search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from rolesearch.api.auth import Caller
from rolesearch.api.deps import CallerDep, RecordingDep, SearcherDep, SettingsDep, peer_of
from rolesearch.api.models import SearchRequest, SearchResponse
from rolesearch.api.recording import stamped
from rolesearch.api.responses import facets_out, search_response
from rolesearch.search.filters import Filters
from rolesearch.search.scope import passage_mask
from rolesearch.search.searcher import Searcher

router = APIRouter(tags=["search"])


async def _run(searcher: Searcher, req: SearchRequest, caller: Caller, facet_hits: int) -> SearchResponse:
    # The caller's groups and the filters become one mask, applied before ranking: k hits the caller may see.
    allow = passage_mask(searcher.index, caller.reader, Filters.of(req.article, req.tag, req.source))
    scope = passage_mask(searcher.index, caller.reader, Filters())  # BM25 statistics over what the caller may read
    # Facets count a few more hits than shown; ranking depth does not depend on k below 25, so the first k agree.
    depth = max(req.k, facet_hits) if req.facets else req.k
    # Encoding the query is CPU-bound; a worker thread keeps the event loop answering.
    result = await run_in_threadpool(searcher.search, req.q, depth, req.mode, None, True, allow, scope)
    facets = facets_out(result.hits, searcher.index.articles) if req.facets else None
    result.hits = result.hits[:req.k]
    return search_response(result, searcher.index.articles).model_copy(update={"facets": facets})


@router.get("/search", response_model=SearchResponse, summary="Rank passages for a question")
async def search_get(req: Annotated[SearchRequest, Query()], searcher: SearcherDep, caller: CallerDep,
                     settings: SettingsDep, recording: RecordingDep, request: Request) -> SearchResponse:
    resp = await _run(searcher, req, caller, settings.facet_hits)
    return stamped(recording, "search", req, resp, caller, peer_of(request))


@router.post("/search", response_model=SearchResponse, summary="Rank passages for a question (JSON body)")
async def search_post(req: SearchRequest, searcher: SearcherDep, caller: CallerDep,
                      settings: SettingsDep, recording: RecordingDep, request: Request) -> SearchResponse:
    resp = await _run(searcher, req, caller, settings.facet_hits)
    return stamped(recording, "search", req, resp, caller, peer_of(request))
