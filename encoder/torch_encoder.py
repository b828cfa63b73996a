"""Sentence-transformers embeddings: the model loaded offline, normalised vectors in batches."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from rolesearch.encoder.base import encode_in_groups, resolve_model

if TYPE_CHECKING:  # the spec module loads this one: importing it back at run time would be a circle
    from rolesearch.encoder.spec import EncoderSpec


class TorchEncoder:
    """A loaded model: encodes texts to normalised float32 vectors and counts its own tokens."""

    backend = "torch"
    batch_invariant = True  # a query's vector does not depend on the queries batched with it (padding is masked)

    def __init__(self, spec: EncoderSpec):
        """The model spec names, on spec.device; EncoderSpec.load() is how callers get one."""
        # No hub at run time here: a name that is not on disk must fail fast, not hang on the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        self.name = spec.model
        self.batch_size = spec.batch_size
        self.spec = spec
        self.vectors = spec.model  # names the vector space: caches and incremental builds reuse only the same one
        self.model = SentenceTransformer(resolve_model(spec.model), device=spec.device)
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
            show_progress_bar=False), progress, on_progress, on_vectors, self.token_lengths(texts))

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text is encoded with (truncated to the model's limit): what batches are sorted by."""
        ids = self.model.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        return [min(len(i), self.max_tokens) for i in ids]

    def encode_query(self, query: str) -> np.ndarray:
        """One normalised query vector, shape (1, dimension)."""
        return self.encode([query])

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Several queries in one forward pass, one row each (the server batches concurrent queries)."""
        return self.encode(list(queries))


