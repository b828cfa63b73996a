"""GET / (the search page) and GET /opensearch.xml (register the page as a browser search engine)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from rolesearch.api.deps import CallerDep, ServiceDep, TemplatesDep
from rolesearch.search.scope import counts_in_scope

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def search_page(request: Request, service: ServiceDep, caller: CallerDep, templates: TemplatesDep) -> Response:
    # One page; its script reads ?q= and runs that search on load. The counts are the caller's own.
    searcher = service.searcher
    articles, passages = counts_in_scope(searcher.index.articles, caller.reader) if searcher else (None, None)
    return templates.TemplateResponse(request, "search.html", {"articles": articles, "passages": passages})


@router.get("/opensearch.xml")
def opensearch(request: Request, templates: TemplatesDep) -> Response:
    base = str(request.base_url).rstrip("/")
    return templates.TemplateResponse(
        request, "opensearch.xml", {"base": base}, media_type="application/opensearchdescription+xml",
    )
