"""A SYNTHETIC large version made from a built one: every row replicated with new ids and noisy vectors.

    python bench/replicate_version.py SOURCE_INDEX TARGET_INDEX --copies 10
    python bench/replicate_version.py SOURCE_INDEX TARGET_INDEX --copies 1    # the same version in today's format

For measuring load time, resident memory, latency and recall at a million passages without a
build of a million (bench/scale.py --passages 1000000 takes hours here). Copy 0 is the source
version's rows unchanged; copy c > 0 has article ids `<id>~c`, passage ids and hashes derived from
them, the same texts (so BM25 is built over the replicated texts: document frequencies scale as in
a real corpus of repeated articles) and the source vectors plus N(0, NOISE) per dimension,
renormalised. The version is written by store.publish.write_version (passage table, FAISS chosen by
size exactly as a build would, trained afresh) and published into TARGET_INDEX; then measure it with
`python bench/scale.py --serve-only TARGET_INDEX`. Its figures are of a synthetic corpus: near-copies
make the dense neighbourhoods tighter than real text would.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rolesearch.store.ann import AnnParams  # noqa: E402
from rolesearch.store.lexical import LEXICAL_PARAMS, analyze  # noqa: E402
from rolesearch.store.manifest import Manifest, new_version_id, now_iso  # noqa: E402
from rolesearch.store.passage import Passage  # noqa: E402
from rolesearch.store.publish import publish, write_version  # noqa: E402
from rolesearch.store.versions import load_version  # noqa: E402

NOISE = 0.02  # as bench/scale.py's cheap vector source


class Replicated(Sequence[Passage]):
    """copies x the source passages, copy-major; row c * n + i is source row i renamed for copy c."""

    def __init__(self, source: list[Passage], copies: int):
        self.source, self.copies = source, copies

    def __len__(self) -> int:
        return len(self.source) * self.copies

    def __getitem__(self, row: int) -> Passage:
        if not 0 <= row < len(self):
            raise IndexError(row)
        c, i = divmod(int(row), len(self.source))
        return rename(self.source[i], c)

    def __iter__(self):
        return (rename(p, c) for c in range(self.copies) for p in self.source)


def rename(p: Passage, copy: int) -> Passage:
    """Passage p as it appears in copy `copy` (copy 0: itself)."""
    if copy == 0:
        return p
    article = f"{p.article_id}~{copy}"
    return replace(p, id=article + p.id[len(p.article_id):], article_id=article,
                   hash=hashlib.sha256(f"{p.hash}~{copy}".encode()).hexdigest()[:16])


def noisy_copies(vectors: np.ndarray, copies: int, path: Path, seed: int = 0) -> np.ndarray:
    """copies x vectors into a float32 file (copy 0 unchanged, others with noise), returned memory-mapped."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(len(vectors) * copies, vectors.shape[1]))
    rng = np.random.default_rng(seed)
    step = 200_000
    for c in range(copies):
        for a in range(0, len(vectors), step):
            block = np.asarray(vectors[a:a + step], dtype=np.float32)
            if c:
                block = block + rng.normal(0, NOISE, block.shape).astype(np.float32)
                block /= np.linalg.norm(block, axis=1, keepdims=True)
            out[c * len(vectors) + a:c * len(vectors) + a + len(block)] = block
    out.flush()
    return np.load(path, mmap_mode="r")


def replicated_lexical(passages: list[Passage], copies: int, folder: Path) -> None:
    """BM25 per field over the replicated texts, tokenised once per source row (the token lists are shared)."""
    import bm25s

    fields = {"text": [p.text for p in passages], "section": [" > ".join(p.section) for p in passages],
              "title": [p.title for p in passages]}
    for name, texts in fields.items():
        tokens = analyze(texts)
        retriever = bm25s.BM25(method=LEXICAL_PARAMS["method"], k1=LEXICAL_PARAMS["k1"], b=LEXICAL_PARAMS["b"])
        retriever.index(tokens * copies, show_progress=False)
        retriever.save(str(folder / "lexical" / name))
        del retriever, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="an index folder with a published version (e.g. from bench/scale.py --keep)")
    ap.add_argument("target", type=Path, help="index folder to publish the synthetic version into")
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--index-type", default="auto", choices=["auto", "flat", "hnsw", "ivf"])
    args = ap.parse_args()
    t0 = time.perf_counter()
    files = load_version(args.source)
    if files.sentence_embeddings is None:
        raise SystemExit("the source version has no sentence vectors")
    passages = list(files.passages)
    m = files.manifest
    stages: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="replicate-", dir=args.target.parent if args.target.parent.exists() else None))
    try:
        t = time.perf_counter()
        replicated_lexical(passages, args.copies, work)
        stages["lexical_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        embeddings = noisy_copies(files.embeddings, args.copies, work / "embeddings.npy", seed=1)
        sentences = noisy_copies(files.sentence_embeddings, args.copies, work / "sentences.npy", seed=2)
        stages["vectors_s"] = round(time.perf_counter() - t, 1)
        articles = {(aid if c == 0 else f"{aid}~{c}"): meta for c in range(args.copies) for aid, meta in m.articles.items()}
        manifest = Manifest(version=new_version_id(), built_at=now_iso(), model=m.model, vectors=m.vectors,
                            dimension=m.dimension, max_model_tokens=m.max_model_tokens, chunking=m.chunking,
                            articles=articles, passages=len(embeddings), lexical=m.lexical, sentences=len(sentences))
        t = time.perf_counter()
        write_version(args.target, manifest, Replicated(passages, args.copies), embeddings,
                      [lambda folder: shutil.copytree(work / "lexical", folder / "lexical")], sentences,
                      AnnParams(kind=args.index_type))
        publish(args.target, manifest.version)
        stages["write_version_s"] = round(time.perf_counter() - t, 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    written = json.loads((args.target / "versions" / manifest.version / "manifest.json").read_text())
    what = f"{args.copies} copies of {args.source} (new ids, vectors + N(0, {NOISE}))" if args.copies > 1 else \
        f"{args.source} rewritten in the current format (rows and vectors unchanged, BM25 and FAISS rebuilt)"
    print(json.dumps({"SYNTHETIC" if args.copies > 1 else "REWRITTEN": what,
                      "passages": manifest.passages, "sentences": manifest.sentences, "articles": len(articles),
                      "ann": written.get("ann"), "stages": stages,
                      "total_s": round(time.perf_counter() - t0, 1)}, indent=2))


if __name__ == "__main__":
    main()
