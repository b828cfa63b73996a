"""The `rolesearch` command: ingest, search, serve, eval."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from api.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Search and answers over ML role articles.")


def _settings(**overrides) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def ingest(
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Folder of articles (default corpus/)"),
    index: Optional[Path] = typer.Option(None, "--index", help="Index folder (default index/)"),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary"),
    wait: bool = typer.Option(False, "--wait", help="Wait for a build already running instead of refusing"),
    full: bool = typer.Option(False, "--full", help="Re-chunk and re-embed everything, ignoring the previous "
                              "version and the embedding cache"),
) -> None:
    """Build or update the index from the corpus, embedding only what changed."""
    from ingest.pipeline import build_index
    from ingest.roles import RolesError
    from ingest.store import StoreError

    s = _settings(corpus_dir=corpus, index_dir=index)
    embedder = s.embedder()
    try:
        summary = build_index(s.corpus_dir, s.index_dir, embedder, s.chunking(),
                              progress=not as_json and sys.stderr.isatty(), wait_for_lock=wait, full=full,
                              cache_max_entries=s.cache_max_entries, roles=s.role_config(),
                              ann_params=s.ann_params())
    except (StoreError, FileNotFoundError, RolesError) as exc:
        _fail(str(exc))
    d = summary.to_dict()
    if as_json:
        typer.echo(json.dumps(d, indent=2))
        return
    a, p = d["articles"], d["passages"]
    typer.echo(summary.reason)
    indexed = a["added"] + a["changed"] + a["unchanged"]
    typer.echo(f"articles: {indexed} indexed ({a['added']} added, {a['changed']} changed, "
               f"{a['unchanged']} unchanged, {a['removed']} removed, {a['skipped']} skipped)")
    typer.echo(f"passages: {p['total']} ({p['embedded']} embedded, {p['reused']} reused) in {d['seconds']:.1f}s")
    for r in d["renamed"]:
        typer.echo(f"renamed {r['from']} -> {r['to']}")
    for s_ in d["skipped"]:
        typer.secho(f"skipped {s_['path']}: {s_['reason']}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"published version {d['version']}")


def _searcher(index: Optional[Path]):
    from ingest.roles import RolesError
    from ingest.store import StoreError
    from search.index import SearchIndex
    from search.searcher import Searcher

    s = _settings(index_dir=index)
    try:
        idx = SearchIndex.load(s.index_dir, s.model)
        roles = s.role_config()
    except (StoreError, RolesError) as exc:
        _fail(str(exc))
    return Searcher(idx, s.embedder(), s.search_config(), roles)


@app.command()
def search(
    query: str = typer.Argument(..., help="The question"),
    index: Optional[Path] = typer.Option(None, "--index"),
    k: int = typer.Option(5, "-k", "--k", help="Number of hits (1-50)"),
    mode: str = typer.Option("hybrid", "--mode", help="dense, lexical or hybrid"),
    as_json: bool = typer.Option(False, "--json", help="Print exactly the body of HTTP /search"),
) -> None:
    """Rank passages for a question."""
    from pydantic import ValidationError

    from api.models import SearchRequest
    from api.responses import search_response

    try:
        req = SearchRequest(q=query, k=k, mode=mode)
    except ValidationError as exc:
        _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()), 2)
    searcher = _searcher(index)
    body = search_response(searcher.search(req.q, req.k, req.mode), searcher.index.articles)
    if as_json:
        typer.echo(body.model_dump_json(indent=2))
        return
    for h in body.hits:
        typer.secho(f"{h.rank}. [{h.score:.3f}] {h.title} — {h.section or '(top)'}", bold=True)
        typer.echo("   " + " ".join(h.text.split())[:300])
        typer.echo(f"   {h.url}")


@app.command()
def ask(
    query: str = typer.Argument(..., help="The question"),
    index: Optional[Path] = typer.Option(None, "--index"),
    k: int = typer.Option(5, "-k", "--k", help="Number of hits shown (1-50)"),
    as_json: bool = typer.Option(False, "--json", help="Print exactly the body of HTTP /ask"),
) -> None:
    """Answer a question: the roles that own the duty, with the passages that say so."""
    from pydantic import ValidationError

    from api.models import SearchRequest
    from api.responses import ask_response
    from search.answers import ask as answer_question

    try:
        req = SearchRequest(q=query, k=k)
    except ValidationError as exc:
        _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()), 2)
    s = _settings(index_dir=index)
    searcher = _searcher(index)
    body = ask_response(answer_question(searcher, req.q, searcher.roles, s.answer_config(), req.k), searcher.index.articles)
    if as_json:
        typer.echo(body.model_dump_json(indent=2))
        return
    a = body.answer
    typer.secho(a.text if a.answerable else f"Not answered: {a.text}", bold=True)
    for r in a.roles:
        typer.echo(f"  {r.role} ({r.confidence:.0%}): {', '.join(r.evidence)}")
    for h in body.hits[:3]:
        typer.echo(f"{h.rank}. {h.title} — {h.section or '(top)'}: {h.highlight.text if h.highlight else h.text[:200]}")


@app.command()
def serve(
    index: Optional[Path] = typer.Option(None, "--index"),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Folder POST /admin/reindex reads (default corpus/)"),
    host: Optional[str] = typer.Option(None, "--host"),
    port: Optional[int] = typer.Option(None, "--port"),
) -> None:
    """Serve the HTTP API under uvicorn; a newly published index version is swapped in by itself."""
    import uvicorn

    from api.access_log import uvicorn_log_config
    from api.app import create_app

    s = _settings(index_dir=index, corpus_dir=corpus, host=host, port=port)
    # The app writes its own JSON access lines (with latency); uvicorn's would say the same thing twice.
    uvicorn.run(create_app(s), host=s.host, port=s.port, log_level="info",
                log_config=uvicorn_log_config(), access_log=False)


@app.command("eval")
def eval_(
    questions: Optional[Path] = typer.Option(None, "--questions", help="JSONL question set"),
    beir: Optional[Path] = typer.Option(None, "--beir", help="BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/)"),
    split: str = typer.Option("test", "--split", help="BEIR qrels split: test, train, dev"),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Folder of cached BEIR corpus embeddings"),
    no_cache: bool = typer.Option(False, "--no-cache", help="Embed the BEIR corpus again"),
    index: Optional[Path] = typer.Option(None, "--index"),
    mode: str = typer.Option("hybrid", "--mode", help="dense, lexical, hybrid or all (BEIR: always all)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Measure retrieval: hit@1, hit@3, MRR@10 on a question set, or nDCG@10, Recall@100, MRR@10 on BEIR data."""
    if beir is not None:
        _eval_beir(beir, split, None if no_cache else cache, not no_cache, as_json)
        return
    from search.evaluation import evaluate_questions, load_questions

    if questions is None:
        _fail("give --questions FILE or --beir DIR")
    qs = load_questions(questions)
    searcher = _searcher(index)
    modes = ["dense", "lexical", "hybrid"] if mode == "all" else [mode]
    results = {m: evaluate_questions(searcher, qs, m) for m in modes}
    if as_json:
        typer.echo(json.dumps(results if len(modes) > 1 else results[modes[0]], indent=2))
        return
    for m, r in results.items():
        typer.echo(f"{m:8s} hit@1 {r['hit@1']:.3f}  hit@3 {r['hit@3']:.3f}  MRR@10 {r['mrr@10']:.3f}  ({r['questions']} questions)")
        for miss in r["misses"]:
            typer.echo(f"   miss {miss['id']} rank {miss['rank']}: {miss['question']}")


def _eval_beir(folder: Path, split: str, cache: Optional[Path], use_cache: bool, as_json: bool) -> None:
    from search.beir import BeirError, default_cache_dir, evaluate_beir

    s = _settings()
    embedder = s.embedder()
    try:
        results = evaluate_beir(folder, embedder, split, s.search_config(),
                                (cache or default_cache_dir()) if use_cache else None,
                                progress=not as_json and sys.stderr.isatty())
    except BeirError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    typer.echo(f"{folder} ({split}), {s.model}")
    for m, r in results.items():
        typer.echo(f"{m:13s} nDCG@10 {r['ndcg@10']:.4f}  Recall@100 {r['recall@100']:.4f}  MRR@10 {r['mrr@10']:.4f}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
