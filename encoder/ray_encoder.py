"""Embedding on a Ray cluster: Ray Data `map_batches` over a pool of actors, one model each, vectors streamed back.

`RayEncoder` has the interface of `encoder.base.Encoder`, so `build_index` and its embedding cache
work unchanged: each group of vectors reaches `on_vectors` (the cache) as soon as an actor returns it.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from rolesearch.cluster import ClusterError, require_ray
from rolesearch.encoder.base import Encoder
from rolesearch.encoder.spec import EncoderSpec

GROUP_BATCHES = 4  # texts per Ray batch = batch_size * this, the same groups a local build encodes at once


class EncodeActor:
    """One Ray actor: loads the model from the spec once, then encodes each batch of texts it is handed."""

    def __init__(self, spec: EncoderSpec, threads: int):
        import torch

        torch.set_num_threads(threads)  # the actor's share of the node's cores, no more
        self.embedder = spec.load()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.encode([str(t) for t in batch["text"]])
        return {"i": batch["i"], "vector": vectors}


class RayEncoder:
    """An Encoder whose `encode` runs on Ray actors; queries and token counts stay on the local model."""

    def __init__(self, local: Encoder, actors: int = 2, actor_cpus: int = 1):
        if actors < 1 or actor_cpus < 1:
            raise ValueError("need at least one Ray actor with at least one CPU")
        self.local = local
        self.actors = actors
        self.actor_cpus = actor_cpus
        self.name = local.name
        self.dimension = local.dimension
        self.max_tokens = local.max_tokens
        self.batch_size = local.batch_size
        self.spec = local.spec  # passed whole: the actors load exactly what the driver would

    def count_tokens(self, text: str) -> int:
        """Tokens the model would see for text (the local tokenizer: chunking runs in the driver)."""
        return self.local.count_tokens(text)

    def encode_query(self, query: str) -> np.ndarray:
        """One query vector, locally: a round trip to the cluster would cost more than the encoding."""
        return self.local.encode_query(query)

    def encode(self, texts: Sequence[str], progress: bool = False,
               on_progress: Callable[[int, int], None] | None = None,
               on_vectors: Callable[[list[int], np.ndarray], None] | None = None) -> np.ndarray:
        """Normalised embeddings, one row per text, computed by the actor pool and handed over group by group.

        Raises ClusterError when the cluster fails the job (an actor lost for good, the cluster gone).
        """
        total = len(texts)
        out = np.zeros((total, self.dimension), dtype=np.float32)
        if not total:
            return out
        ray = require_ray()
        step = self.batch_size * GROUP_BATCHES
        # Sorted by length like a local build: similar lengths share a batch (less padding, same groups).
        order = sorted(range(total), key=lambda i: len(texts[i]))
        dataset = ray.data.from_items([{"i": i, "text": texts[i]} for i in order],
                                      override_num_blocks=math.ceil(total / step))
        encoded = dataset.map_batches(
            EncodeActor, fn_constructor_args=(self.spec, self.actor_cpus), batch_size=step,
            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=self.actors), num_cpus=self.actor_cpus,
        )
        done = 0
        batches = iter(encoded.iter_batches(batch_size=None, batch_format="numpy"))
        with tqdm(total=total, unit=" passages", desc=f"embedding on {self.actors} Ray actors",
                  disable=not progress, dynamic_ncols=True) as bar:
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except Exception as exc:  # noqa: BLE001 - Ray wraps actor and node failures in many types
                    raise ClusterError(f"the Ray embedding job failed after {done} of {total} texts "
                                       f"(those are cached; the next build embeds only the rest): {exc}") from exc
                idx = [int(i) for i in batch["i"]]
                vectors = np.asarray(batch["vector"], dtype=np.float32)
                out[idx] = vectors
                if on_vectors is not None:
                    on_vectors(idx, vectors)
                done += len(idx)
                bar.update(len(idx))
                if on_progress is not None:
                    on_progress(done, total)
        if done != total:
            raise ClusterError(f"the Ray embedding job returned {done} of {total} vectors")
        return out
