"""A full ingest of a folder of SciFact abstracts against a bare torch encode of its passages, timed in the same run.

    .venv/bin/python bench/ingest_scifact.py [--beir ../shared/benchmarks/scifact] [--docs 600] [--rounds 1]
        [--variant int8=ROLESEARCH_SENTENCE_BACKEND=onnx-int8 ...]

The ingest is `rolesearch ingest --corpus FOLDER --index FRESH --json` in a new process (process start,
model load, chunking, embedding of passages and sentences, BM25, writing, publishing: everything), over
a folder of one Markdown file per abstract, with a fresh index folder and so an empty embedding cache.
The baseline is sentence-transformers on torch encoding the texts of the passages that ingest made
(title and section with the text, as embedded), batch 32, and nothing else (the model is loaded before
the clock starts), in its own process. Issue 23's target: ingest / bare encode <= 1.3. Each variant
(NAME=VAR=VALUE[,VAR=VALUE]) is one more ingest per round with those settings. On a shared machine the
absolute times swing with the load; the ratio within a round is the figure (load averages are printed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rolesearch.ingest.beir import load_beir  # noqa: E402
from rolesearch.ingest.chunking import embed_text  # noqa: E402
from rolesearch.store.versions import load_version  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

BARE = """
import json, sys, time
from sentence_transformers import SentenceTransformer
from rolesearch.encoder.base import resolve_model
texts = json.load(open(sys.argv[1]))
model = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu")
model.encode(["warm up"])
t0, c0 = time.perf_counter(), time.process_time()
model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}))
"""


def write_folder(folder: Path, docs: list[tuple[str, str, str]]) -> None:
    """One Markdown file per abstract, its title in the front matter."""
    folder.mkdir(parents=True)
    for doc_id, title, text in docs:
        (folder / f"{doc_id}.md").write_text(f"---\ntitle: {json.dumps(title or doc_id)}\n---\n\n{text}\n",
                                             encoding="utf-8")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def env_with(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **extra}


def ingest(corpus: Path, index: Path, extra: dict[str, str]) -> dict:
    """`rolesearch ingest` in a new process: wall and CPU seconds, and its JSON summary."""
    c0, t0 = children_cpu(), time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "rolesearch", "ingest", "--corpus", str(corpus), "--index", str(index),
                          "--json"], env=env_with(extra), cwd=ROOT, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    return {"wall": wall, "cpu": children_cpu() - c0, "summary": json.loads(out.stdout)}


def bare_encode(texts: list[str], tmp: Path) -> dict:
    """sentence-transformers (torch) encoding texts at batch 32 in its own process: the encode's seconds."""
    path = tmp / "texts.json"
    path.write_text(json.dumps(texts))
    out = subprocess.run([sys.executable, "-c", BARE, str(path)], env=env_with({}), cwd=ROOT, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_variant(spec: str) -> tuple[str, dict[str, str]]:
    name, _, settings = spec.partition("=")
    return name, dict(kv.split("=", 1) for kv in settings.split(",") if kv)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beir", type=Path, default=ROOT.parent / "shared" / "benchmarks" / "scifact")
    ap.add_argument("--docs", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--variant", action="append", default=[], help="NAME=VAR=VALUE[,VAR=VALUE]: one more ingest")
    args = ap.parse_args()
    variants = [("default", {})] + [parse_variant(v) for v in args.variant]
    docs = load_beir(args.beir).docs[: args.docs]
    print(f"{len(docs)} SciFact abstracts, {os.cpu_count()} CPUs, load average {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ingest-scifact-") as tmp_name:
        tmp = Path(tmp_name)
        write_folder(tmp / "corpus", docs)
        for r in range(args.rounds):
            runs = {}
            for name, extra in variants:
                index = tmp / f"index-{r}-{name}"
                runs[name] = ingest(tmp / "corpus", index, extra)
                s = runs[name]["summary"]
                print(f"round {r + 1} ingest {name:10s}: {runs[name]['wall']:7.1f} s wall {runs[name]['cpu']:7.1f} s "
                      f"CPU  passages {s['passages']['total']}, sentence rows {s['sentences']['total']} "
                      f"(load average {os.getloadavg()[0]:.1f})", flush=True)
            passages = load_version(tmp / f"index-{r}-default").passages
            texts = [embed_text(p.title, p.section, p.text) for p in passages]
            bare = bare_encode(texts, tmp)
            print(f"round {r + 1} bare torch encode of the {len(texts)} passages' texts (batch 32): {bare['wall']:7.1f} s "
                  f"wall {bare['cpu']:7.1f} s CPU (load average {os.getloadavg()[0]:.1f})", flush=True)
            for name, run in runs.items():
                print(f"round {r + 1} {name:10s} ingest / bare encode: {run['wall'] / bare['wall']:.2f}x wall, "
                      f"{run['cpu'] / bare['cpu']:.2f}x CPU  (target <= 1.3)", flush=True)
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
