"""GET and POST /search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from api.deps import SearcherDep
from api.models import SearchRequest, SearchResponse
from api.responses import search_response
from search.searcher import Searcher

router = APIRouter(tags=["search"])


async def _run(searcher: Searcher, req: SearchRequest) -> SearchResponse:
    # Encoding the query is CPU-bound; a worker thread keeps the event loop answering.
    result = await run_in_threadpool(searcher.search, req.q, req.k, req.mode)
    return search_response(result, searcher.index.articles)


@router.get("/search", response_model=SearchResponse, summary="Rank passages for a question")
async def search_get(req: Annotated[SearchRequest, Query()], searcher: SearcherDep) -> SearchResponse:
    return await _run(searcher, req)


@router.post("/search", response_model=SearchResponse, summary="Rank passages for a question (JSON body)")
async def search_post(req: SearchRequest, searcher: SearcherDep) -> SearchResponse:
    return await _run(searcher, req)
