"""`rolesearch eval`: retrieval quality on a question set or BEIR data, ours beside the baseline."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from rolesearch.cli.app import app, fail, settings_from
from rolesearch.cli.query import searcher_or_exit


@app.command("eval")
def eval_(
    questions: Optional[Path] = typer.Option(None, "--questions", help="JSONL question set"),
    beir: Optional[Path] = typer.Option(None, "--beir", help="BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/)"),
    split: Optional[str] = typer.Option(None, "--split",
                                        help="Question set: tuning, heldout or all (default all). BEIR qrels: test, train, dev (default test)"),
    ranker: str = typer.Option("all", "--ranker", help="ours (the served ranker), baseline (search/baseline.py) or all"),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Folder of cached BEIR corpus embeddings"),
    no_cache: bool = typer.Option(False, "--no-cache", help="Embed the BEIR corpus again"),
    index: Optional[Path] = typer.Option(None, "--index"),
    mode: str = typer.Option("hybrid", "--mode", help="dense, lexical, hybrid or all (BEIR: always all)"),
    offtopic: Optional[Path] = typer.Option(None, "--offtopic", help="Also judge answers: role questions, and these off-topic ones"),
    from_feedback: bool = typer.Option(False, "--from-feedback", help="The question set from readers: searches whose "
                                       "hit was judged good, or clicked and not reformulated within a minute"),
    since: str = typer.Option("30d", "--since", help="--from-feedback: searches of this period before now (7d, 24h ...)"),
    out: Optional[Path] = typer.Option(None, "--out", help="--from-feedback: also write the question set here (JSONL)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Measure retrieval, ours beside the baseline: hit@1, hit@3, MRR@10 (overall and per kind) on a question set,
    or nDCG@10, Recall@100, MRR@10 on BEIR data."""
    if ranker not in ("ours", "baseline", "all"):
        fail("--ranker must be ours, baseline or all", 2)
    rankers = ["ours", "baseline"] if ranker == "all" else [ranker]
    if beir is not None:
        _eval_beir(beir, split or "test", None if no_cache else cache, not no_cache, as_json, rankers)
        return
    from rolesearch.search.baseline import BaselineSearcher
    from rolesearch.search.evaluation import evaluate_answers, evaluate_questions, load_questions, select_split

    if (questions is None) == (not from_feedback):
        fail("give one of --questions FILE, --from-feedback or --beir DIR")
    modes = ["dense", "lexical", "hybrid"] if mode == "all" else [mode]
    if any(m not in ("dense", "lexical", "hybrid") for m in modes):
        fail("--mode must be dense, lexical, hybrid or all", 2)
    if from_feedback:
        searcher = searcher_or_exit(index)
        questions = _feedback_questions(searcher, index, since, out, as_json)
    try:
        qs = select_split(load_questions(questions), split or "all")
    except ValueError as exc:
        fail(str(exc), 2)
    if not from_feedback:
        searcher = searcher_or_exit(index)
    by_name = {"ours": searcher, "baseline": BaselineSearcher(searcher.index, searcher.embedder, searcher.config.candidates)}
    results = {f"{r} {m}": evaluate_questions(by_name[r], qs, m) for r in rankers for m in modes}
    answers = None
    if offtopic is not None:
        s = settings_from(index_dir=index)
        off = [json.loads(line)["question"] for line in offtopic.read_text(encoding="utf-8").splitlines() if line.strip()]
        answers = evaluate_answers(searcher, qs, off, searcher.roles, s.answer_config())
    if as_json:
        typer.echo(json.dumps({"split": split or "all", "results": results, "answers": answers}, indent=2))
        return
    typer.echo(f"{questions}, split {split or 'all'}: {len(qs)} questions")
    typer.echo(f"{'':18s} {'hit@1':>6s} {'hit@3':>6s} {'MRR@10':>7s}")
    for name, r in results.items():
        typer.echo(f"{name:18s} {r['hit@1']:6.3f} {r['hit@3']:6.3f} {r['mrr@10']:7.3f}")
    kinds = sorted({k for r in results.values() for k in r["per_kind"]})
    if kinds:
        typer.echo("\nper kind, hit@3 / MRR@10")
        typer.echo(f"{'kind (n)':18s} " + " ".join(f"{name:>16s}" for name in results))
        for k in kinds:
            n = next(r["per_kind"][k]["questions"] for r in results.values() if k in r["per_kind"])
            cells = [f"{r['per_kind'][k]['hit@3']:.3f} / {r['per_kind'][k]['mrr@10']:.3f}" for r in results.values()]
            typer.echo(f"{f'{k} ({n})':18s} " + " ".join(f"{c:>16s}" for c in cells))
    for name, r in results.items():
        if r["misses"]:
            typer.echo(f"\n{name}: not in the top 3")
        for miss in r["misses"]:
            typer.echo(f"   {miss['id']} ({miss['kind']}) rank {miss['rank']}: {miss['question']}")
    if answers is not None:
        typer.echo(f"\nanswers (ours): on-topic answered {answers['answered_on_topic']:.3f}, off-topic refused "
                   f"{answers['refused_off_topic']:.3f}, role questions {answers['role_questions']}: top role right "
                   f"{answers['role_top_right']:.3f}, exact role set {answers['role_exact']:.3f}")
        for w in answers["role_misses"]:
            typer.echo(f"   {w['id']}: expected {', '.join(w['expected'])}; got {', '.join(w['got']) or 'none'}")
        for q in answers["answered_off_topic"]:
            typer.echo(f"   answered off-topic: {q}")
        for qid in answers["unanswered"]:
            typer.echo(f"   refused on-topic: {qid}")


def _feedback_questions(searcher, index: Optional[Path], since: str, out: Optional[Path], quiet: bool) -> Path:
    """Export the readers' question set of the period to out (or a temporary file); the path to evaluate."""
    import tempfile
    import time

    from rolesearch.analytics.export import feedback_questions
    from rolesearch.analytics.passages import find_passage
    from rolesearch.cli.analytics import open_period

    s = settings_from(index_dir=index)
    seconds, conn = open_period(s, since)

    def text(pid: str) -> str | None:
        p = find_passage(searcher.index.passages, pid)
        return p.text if p is not None else None

    now = time.time()
    exported = feedback_questions(conn, now - seconds, now + 1, text)
    conn.close()
    if not exported.questions:
        fail(f"no judged or clicked searches to make questions of in the last {since} "
             f"(left out: {exported.skipped or 'none'})")
    if out is None:
        out = Path(tempfile.mkstemp(prefix="feedback-", suffix=".jsonl")[1])
    out.write_text(exported.jsonl(), encoding="utf-8")
    if not quiet:
        left = ", ".join(f"{n} {why}" for why, n in sorted(exported.skipped.items())) or "none"
        typer.echo(f"from feedback, last {since}: {len(exported.questions)} questions written to {out} (left out: {left})")
    return out


def _eval_beir(folder: Path, split: str, cache: Optional[Path], use_cache: bool, as_json: bool,
               rankers: list[str]) -> None:
    from rolesearch.cli.beir import evaluate_beir
    from rolesearch.ingest.beir import BeirError, default_cache_dir

    s = settings_from()
    embedder = s.embedder()
    try:
        results = evaluate_beir(folder, embedder, split, s.search_config(),
                                (cache or default_cache_dir()) if use_cache else None,
                                progress=not as_json and sys.stderr.isatty(), rankers=tuple(rankers),
                                sentence_params=s.sentence_params(), sentence_embedder=s.sentence_embedder(embedder))
    except BeirError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    typer.echo(f"{folder} ({split}), {s.model}")
    for m, r in results.items():
        typer.echo(f"{m:13s} nDCG@10 {r['ndcg@10']:.4f}  Recall@100 {r['recall@100']:.4f}  MRR@10 {r['mrr@10']:.4f}")

