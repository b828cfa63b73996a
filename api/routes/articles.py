"""GET /articles (the indexed articles) and GET /articles/{article_id} (one, with section anchors)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from rolesearch.api.article_view import ArticleMissing, ArticleRefused, load_article_page
from rolesearch.api.deps import CallerDep, SearcherDep, SettingsDep, TemplatesDep
from rolesearch.api.errors import error_response
from rolesearch.search.access import can_read
from rolesearch.search.scope import counts_in_scope

router = APIRouter(tags=["articles"], default_response_class=HTMLResponse)


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


@router.get("/articles", summary="The indexed articles (HTML)")
def list_articles(request: Request, searcher: SearcherDep, templates: TemplatesDep, caller: CallerDep) -> HTMLResponse:
    index = searcher.index
    articles = sorted(({"id": aid, **meta} for aid, meta in index.articles.items()
                       if can_read(meta.get("access"), caller.reader)), key=lambda a: a["title"].lower())
    _, passages = counts_in_scope(index.articles, caller.reader)
    return templates.TemplateResponse(
        request, "articles.html", {"articles": articles, "passages": passages, "version": index.version},
    )


@router.get(
    "/articles/{article_id}",
    summary="One article (HTML), with an anchor on each section heading",
    responses={404: error_response("No such article in the served index", html_too=True)},
)
async def show_article(article_id: str, request: Request, searcher: SearcherDep, settings: SettingsDep,
                       templates: TemplatesDep, caller: CallerDep) -> HTMLResponse:
    indexed = searcher.index.articles.get(article_id)
    if indexed is not None and not can_read(indexed.get("access"), caller.reader):
        indexed = None  # the same 404 as a missing article: its existence is not confirmed
    missing = ArticleMissing(f"no article {article_id!r} in the index; see /articles for the list")
    try:
        if indexed is None:
            raise missing
        try:
            page = await run_in_threadpool(load_article_page, settings.corpus_dir, article_id, indexed,
                                           caller.reader)
        except ArticleRefused:
            raise missing from None  # restricted in the file since the ingest: the same 404 as no article
    except ArticleMissing as exc:
        if _wants_html(request):
            # A person following a stale link gets a page; scripts get the usual {"detail": ...}.
            return templates.TemplateResponse(request, "not_found.html", {"detail": str(exc)}, status_code=404)
        raise HTTPException(404, str(exc)) from exc
    return templates.TemplateResponse(request, "article.html", {"page": page})
