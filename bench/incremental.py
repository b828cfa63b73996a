"""Full build vs incremental build after adding one article, on a generated corpus of ~200 articles.

    .venv/bin/python bench/incremental.py                # 200 articles (minutes on 2 cores)
    .venv/bin/python bench/incremental.py --articles 40  # quicker

The articles are variants of the role articles in corpus/: each keeps a seeded random share
of its source's paragraphs, shuffles sentences inside some of them, swaps words for synonyms
and gets its own title, so their passages (and vectors) differ. Both builds run in this
process with the model already loaded, so the figures are the builds themselves.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rolesearch.ingest.articles import list_article_files, read_article  # noqa: E402
from rolesearch.ingest.pipeline import build_index  # noqa: E402
from rolesearch.settings import Settings  # noqa: E402

SYNONYMS = {
    "engineer": "practitioner", "engineers": "practitioners", "model": "system", "models": "systems",
    "production": "live service", "deploy": "ship", "deploying": "shipping", "monitoring": "observing",
    "responsible": "accountable", "build": "create", "building": "creating", "team": "group",
    "teams": "groups", "data": "records", "pipeline": "workflow", "pipelines": "workflows",
    "skills": "abilities", "tools": "instruments", "often": "frequently", "important": "essential",
    "company": "organisation", "companies": "organisations", "role": "position", "roles": "positions",
}
TOPICS = ["in a startup", "at a bank", "in healthcare", "in retail", "for a platform team", "in gaming",
          "at a research lab", "in logistics", "for a small team", "in insurance", "at scale", "in 2025"]
_WORD = re.compile(r"[A-Za-z]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def vary(text: str, rng: random.Random) -> str:
    """A variant of an article body: some lines dropped, sentences shuffled, synonyms swapped.

    Works line by line (one role article has single newlines only); blank lines and short
    heading-like lines are kept, so the variant keeps its source's structure.
    """
    out = []
    for line in text.split("\n"):
        is_heading = len(line.split()) <= 8
        if not is_heading and rng.random() < 0.3:
            continue
        if not is_heading and rng.random() < 0.5:
            sentences = _SENTENCE.split(line.strip())
            rng.shuffle(sentences)
            line = " ".join(sentences)
        rate = rng.uniform(0.2, 0.8)
        out.append(_WORD.sub(lambda m: _swap(m.group(0), rate, rng), line))
    return "\n".join(out) + "\n"


def _swap(word: str, rate: float, rng: random.Random) -> str:
    repl = SYNONYMS.get(word.lower())
    if repl is None or rng.random() > rate:
        return word
    return repl.capitalize() if word[0].isupper() else repl


def generate(sources: list, folder: Path, n: int, seed: int, start: int = 0) -> None:
    """Write n variant articles (Markdown with front matter) into folder."""
    rng = random.Random(seed)
    for i in range(start, start + n):
        src = sources[i % len(sources)]
        title = f"{src.title} ({rng.choice(TOPICS)}, variant {i})"
        body = f"---\ntitle: \"{title}\"\npublisher: bench\n---\n# {title}\n\n{vary(src.text, rng)}"
        (folder / f"variant-{i:04d}.md").write_text(body, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=200, help="articles in the generated corpus (default 200)")
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args()

    corpus_src = ROOT / "corpus"
    sources = [read_article(p, corpus_src) for p in list_article_files(corpus_src)]
    embedder = Settings().embedder()  # the configured backend (ROLESEARCH_BACKEND)
    embedder.encode(["warm-up"])  # first call pays one-off start-up costs
    with tempfile.TemporaryDirectory(prefix="rolesearch-bench-") as tmp:
        corpus, index = Path(tmp) / "corpus", Path(tmp) / "index"
        corpus.mkdir()
        generate(sources, corpus, args.articles, args.seed)

        t = time.perf_counter()
        full = build_index(corpus, index, embedder)
        full_s = time.perf_counter() - t

        generate(sources, corpus, 1, args.seed + 1, start=args.articles)
        t = time.perf_counter()
        inc = build_index(corpus, index, embedder)
        inc_s = time.perf_counter() - t

    fp, ip = full.passages, inc.passages
    print(f"corpus: {args.articles} generated articles, {fp['total']} passages; then 1 article added")
    print(f"full build:        {full_s:7.2f} s  embedded {fp['embedded']:5d}  reused {fp['reused']:5d}  "
          f"({fp['embedded'] / full_s:.1f} passages/s)")
    print(f"incremental build: {inc_s:7.2f} s  embedded {ip['embedded']:5d}  reused {ip['reused']:5d}  "
          f"(articles {inc.articles})")
    print(f"incremental / full: {inc_s / full_s:.3f}  ({full_s / inc_s:.1f}x faster)")
    for s in full.skipped + inc.skipped:
        print(f"skipped {s['path']}: {s['reason']}")


if __name__ == "__main__":
    main()
