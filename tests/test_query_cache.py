"""The query-vector cache: the encoder's own vectors, LRU bounds in entries and bytes, one vector space at a time."""

from __future__ import annotations

import numpy as np

from rolesearch.encoder.cache import CachedQueryEncoder, normalize_query


class FakeEncoder:
    """A model whose vector is a hash of the text (case-sensitive unless fold), counting its forward passes."""

    def __init__(self, space: str = "fake-a", fold: bool = False, dimension: int = 8):
        self.vectors = space
        self.dimension = dimension
        self.fold = fold
        self.calls: list[str] = []

    def encode_query(self, query: str) -> np.ndarray:
        self.calls.append(query)
        text = " ".join(query.split())
        text = text.lower() if self.fold else text
        rng = np.random.default_rng(abs(hash((self.vectors, text))) % 2**32)
        v = rng.standard_normal((1, self.dimension)).astype(np.float32)
        return v / np.linalg.norm(v)


def test_real_model_vectors_equal_and_variants_share_an_entry(embedder):
    cache = CachedQueryEncoder(embedder, max_entries=100, max_bytes=1 << 20)
    first = cache.encode_query("who owns model rollback?")
    assert np.array_equal(first, embedder.encode_query("who owns model rollback?"))
    # all-MiniLM-L6-v2 is uncased: the probe finds that, so case and spacing variants are one entry.
    again = cache.encode_query("  Who OWNS   model rollback? ")
    assert again is first
    assert cache.stats()["hits"] == 1 and cache.stats()["entries"] == 1
    assert not first.flags.writeable  # shared between requests: nobody may change it in place


def test_case_kept_for_a_cased_model():
    inner = FakeEncoder(fold=False)
    cache = CachedQueryEncoder(inner, max_entries=10, max_bytes=1 << 20)
    a, b = cache.encode_query("MLOps"), cache.encode_query("mlops")
    assert not np.array_equal(a, b)
    assert cache.stats()["entries"] == 2
    assert normalize_query(" a \n B ", fold_case=False) == "a B"


def test_lru_bounded_in_entries():
    inner = FakeEncoder()
    cache = CachedQueryEncoder(inner, max_entries=2, max_bytes=1 << 20)
    cache.encode_query("q1")
    cache.encode_query("q2")
    cache.encode_query("q1")  # q1 is now the most recent: q2 goes first
    cache.encode_query("q3")
    probes = len(inner.calls)
    cache.encode_query("q1")
    assert len(inner.calls) == probes  # kept
    cache.encode_query("q2")
    assert len(inner.calls) == probes + 1  # evicted, encoded again
    assert cache.stats()["entries"] == 2


def test_lru_bounded_in_bytes():
    inner = FakeEncoder(dimension=64)  # 256 bytes a vector
    cache = CachedQueryEncoder(inner, max_entries=1000, max_bytes=1000)
    for i in range(20):
        cache.encode_query(f"query {i}")
    stats = cache.stats()
    assert 0 < stats["bytes"] <= 1000
    assert stats["entries"] < 20
    tiny = CachedQueryEncoder(FakeEncoder(dimension=64), max_entries=1000, max_bytes=100)
    tiny.encode_query("too big for the cache")
    assert tiny.stats()["entries"] == 0


def test_a_new_vector_space_empties_the_cache_and_never_mixes():
    inner = FakeEncoder(space="model-a")
    cache = CachedQueryEncoder(inner, max_entries=10, max_bytes=1 << 20)
    old = cache.encode_query("who owns rollback?")
    inner.vectors = "model-b"  # the model changed under the cache (e.g. int8 vs fp32: another vector space)
    new = cache.encode_query("who owns rollback?")
    assert not np.array_equal(old, new)
    assert np.array_equal(new, inner.encode_query("who owns rollback?"))
    hits = cache.stats()["hits"]
    assert cache.encode_query("who owns rollback?") is new  # the new space's vector is kept, the old one gone
    assert cache.stats()["hits"] == hits + 1 and cache.stats()["entries"] == 1


def test_search_and_ask_share_the_cache(client):
    cache = client.app.state.service.embedder
    assert isinstance(cache, CachedQueryEncoder)
    before = cache.stats()
    assert client.get("/search", params={"q": "what does drift monitoring involve?"}).status_code == 200
    assert client.get("/ask", params={"q": "what does drift monitoring involve?"}).status_code == 200
    after = cache.stats()
    assert after["misses"] - before["misses"] == 1
    assert after["hits"] - before["hits"] == 1
