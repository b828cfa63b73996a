"""Operations: /metrics, /readyz, CORS, the JSON access log."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from rolesearch.api.access_log import LOGGER_NAME, access_line
from rolesearch.api.app import create_app
from rolesearch.settings import Settings


def _samples(text: str) -> dict:
    """(sample name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_by_route_template_and_status(client):
    assert client.get("/search", params={"q": "who rolls back models?"}).status_code == 200
    assert client.get("/search", params={"q": ""}).status_code == 422
    assert client.get("/articles/no-such").status_code == 404
    assert client.get("/wp-login.php").status_code == 404
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    s = _samples(r.text)

    def count(route, status, method="GET"):
        return s.get(("rolesearch_http_requests_total", (("method", method), ("route", route), ("status", status))))

    assert count("/search", "200") == 1.0
    assert count("/search", "422") == 1.0
    assert count("/articles/{article_id}", "404") == 1.0
    assert count("<unmatched>", "404") == 1.0  # unknown paths share one series
    assert not any("wp-login" in str(k) for k in s)
    latency = ("rolesearch_http_request_duration_seconds_count",
               (("method", "GET"), ("route", "/search"), ("status", "200")))
    assert s[latency] == 1.0


def test_metrics_report_the_served_index_and_its_load_time(client, small_index):
    from rolesearch.store.manifest import current_version, read_manifest

    service = client.app.state.service
    s = _samples(client.get("/metrics").text)
    manifest = read_manifest(small_index)
    # No whole-index counts: they would count restricted articles for anyone who can reach /metrics.
    assert manifest.passages and not any(name.startswith(("rolesearch_index_passages", "rolesearch_index_articles"))
                                         for name, _ in s)
    info = [labels for (name, labels) in s if name == "rolesearch_index_info"]
    assert dict(info[0])["version"] == current_version(small_index)
    assert s[("rolesearch_index_last_reload_timestamp_seconds", ())] == service.loaded_at
    # A reload (as the hot-reload path does it) moves the timestamp.
    before = service.loaded_at
    service.load()
    s = _samples(client.get("/metrics").text)
    assert service.loaded_at > before
    assert s[("rolesearch_index_last_reload_timestamp_seconds", ())] == service.loaded_at


def test_rebuild_durations_are_exposed_for_the_rebuild_code(client):
    client.app.state.metrics.rebuild_seconds.labels("published").observe(3.2)
    s = _samples(client.get("/metrics").text)
    assert s[("rolesearch_index_rebuild_duration_seconds_count", (("outcome", "published"),))] == 1.0
    assert s[("rolesearch_index_rebuild_duration_seconds_sum", (("outcome", "published"),))] == pytest.approx(3.2)


def test_each_app_counts_in_its_own_registry(small_index, embedder):
    counts = []
    for _ in range(2):
        with TestClient(create_app(Settings(index_dir=small_index), embedder=embedder)) as c:
            c.get("/healthz")
            s = _samples(c.get("/metrics").text)
            counts.append(s[("rolesearch_http_requests_total", (("method", "GET"), ("route", "/healthz"), ("status", "200")))])
    assert counts == [1.0, 1.0]


def test_readyz_is_503_until_an_index_is_loaded(tmp_path, small_corpus, embedder):
    from rolesearch.ingest.pipeline import build_index

    index_dir = tmp_path / "late-index"
    with TestClient(create_app(Settings(index_dir=index_dir), embedder=embedder)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert "rolesearch ingest" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200  # alive all the same
        summary = build_index(small_corpus, index_dir, embedder)
        c.app.state.service.load()
        assert c.get("/readyz").json() == {"status": "ready", "index_version": summary.version}


def test_cors_allows_only_configured_origins(small_index, embedder):
    settings = Settings(index_dir=small_index, cors_origins=["https://wiki.example"])
    with TestClient(create_app(settings, embedder=embedder)) as c:
        pre = c.options("/search", headers={"Origin": "https://wiki.example", "Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers": "content-type"})
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "https://wiki.example"
        r = c.get("/search", params={"q": "rollback"}, headers={"Origin": "https://wiki.example"})
        assert r.headers["access-control-allow-origin"] == "https://wiki.example"
        r = c.get("/search", params={"q": "rollback"}, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        pre = c.options("/search", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
        assert pre.status_code == 400 and "access-control-allow-origin" not in pre.headers


def test_no_cors_by_default(client):
    r = client.get("/search", params={"q": "rollback"}, headers={"Origin": "https://wiki.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("value", ["https://wiki.example, https://intranet.example/", '["https://wiki.example", "https://intranet.example"]'])
def test_cors_origins_from_the_environment(monkeypatch, value):
    monkeypatch.setenv("ROLESEARCH_CORS_ORIGINS", value)
    assert Settings().cors_origins == ["https://wiki.example", "https://intranet.example"]


def test_access_log_is_one_json_line_per_request_with_latency(client, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    client.get("/search", params={"q": "who rolls back models?"})
    client.get("/nowhere")
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert (first["method"], first["path"], first["route"], first["status"]) == ("GET", "/search", "/search", 200)
    assert first["latency_ms"] > 0 and first["client"] == "testclient"
    assert (second["route"], second["status"]) == ("<unmatched>", 404)
    assert "rolls" not in lines[0]  # what people search for stays out of the log


def test_access_line_stays_one_line_whatever_the_path():
    line = access_line("GET", '/a\n"b"\u2028\U0001F600', "<unmatched>", 404, 0.0123, None)
    assert "\n" not in line and "\u2028" not in line
    assert json.loads(line)["path"] == '/a\n"b"\u2028\U0001F600'
    assert json.loads(line)["latency_ms"] == 12.3


def test_query_encodings_wait_their_turn(embedder):
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from rolesearch.encoder.batched import BatchedQueryEncoder

    class Recording:
        """Counts how many encodings run at once."""

        def __init__(self):
            self.now = self.peak = 0
            self.lock = threading.Lock()

        def encode_query(self, query):
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            time.sleep(0.02)
            with self.lock:
                self.now -= 1
            return np.zeros((1, 3), dtype=np.float32)

    inner = Recording()
    gated = BatchedQueryEncoder(inner, 2)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(gated.encode_query, ["q"] * 16))
    assert inner.peak == 2
    # Over the real model it is the model: same vectors, same attributes for ingest and search.
    real = BatchedQueryEncoder(embedder, 2)
    assert (real.name, real.dimension, real.max_tokens) == (embedder.name, embedder.dimension, embedder.max_tokens)
    assert np.array_equal(real.encode_query("who owns rollback?"), embedder.encode_query("who owns rollback?"))


def test_waiting_queries_share_one_pass_and_get_their_own_vectors(embedder):
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import pytest

    from rolesearch.encoder.batched import BatchedQueryEncoder

    class Recording:
        """Vectors that name their query; records each pass's size; batch-invariant like an fp32 model."""

        batch_invariant = True

        def __init__(self):
            self.passes = []
            self.lock = threading.Lock()

        def encode_queries(self, queries):
            with self.lock:
                self.passes.append(len(queries))
            time.sleep(0.02)
            if "boom" in queries:
                raise RuntimeError("the model failed")
            return np.array([[float(q)] for q in queries], dtype=np.float32)

        def encode_query(self, query):
            return self.encode_queries([query])

    inner = Recording()
    gated = BatchedQueryEncoder(inner, 1, batch=4)
    assert gated.encode_query("7").tolist() == [[7.0]] and inner.passes == [1]  # alone: runs at once, by itself
    with ThreadPoolExecutor(8) as pool:
        vectors = list(pool.map(gated.encode_query, [str(i) for i in range(24)]))
    assert [v.tolist() for v in vectors] == [[[float(i)]] for i in range(24)]  # each query its own row
    assert max(inner.passes) == 4 and sum(inner.passes) == 25 and len(inner.passes) < 24
    # Two passes at once: a query already in one pass is not run again by its own thread.
    two = BatchedQueryEncoder(inner, 2, batch=3)
    for _ in range(3):
        with ThreadPoolExecutor(8) as pool:
            vectors = list(pool.map(two.encode_query, [str(i) for i in range(40)]))
        assert [v.tolist() for v in vectors] == [[[float(i)]] for i in range(40)]
    inner.passes.clear()
    # A failed pass fails every query in it, and the gate still serves the next ones.
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(gated.encode_query, q) for q in ["1", "boom", "2", "3"]]
    errors = [f.exception() for f in futures]
    assert any(isinstance(e, RuntimeError) for e in errors)
    assert all(f.result().tolist() == [[float(q)]] for f, q in zip(futures, ["1", "boom", "2", "3"]) if f.exception() is None)
    assert gated.encode_query("5").tolist() == [[5.0]]
    assert sum(inner.passes) == 5  # every query encoded exactly once
    # An embedder whose vectors depend on their batch-mates (dynamic int8) is never batched.
    inner.batch_invariant = False
    inner.passes.clear()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(BatchedQueryEncoder(inner, 1, batch=4).encode_query, [str(i) for i in range(8)]))
    assert inner.passes == [1] * 8
    # Over the real model a batched query gets the vector it gets alone.
    queries = ["who owns model rollback?", "drift monitoring", "what does an ML platform engineer do in a small team?"]
    together = embedder.encode_queries(queries)
    for q, row in zip(queries, together):
        np.testing.assert_allclose(row, embedder.encode_query(q)[0], atol=1e-5)
    with pytest.raises(AttributeError):
        BatchedQueryEncoder(embedder, 1).no_such_attribute


def test_server_settings_for_queries_apply(small_index, embedder):
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from rolesearch.encoder.batched import BatchedQueryEncoder
    from rolesearch.encoder.cache import CachedQueryEncoder

    app = create_app(Settings(index_dir=small_index, query_concurrency=3, torch_threads=1), embedder=embedder)
    with TestClient(app) as c:
        encoder = c.app.state.service.embedder  # the query cache wraps the batching encoder
        assert isinstance(encoder, CachedQueryEncoder) and isinstance(encoder.inner, BatchedQueryEncoder)
        # Threads started after start-up (the request workers) take the setting.
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(torch.get_num_threads).result() == 1
        assert c.get("/search", params={"q": "who rolls back models?", "k": 1}).json()["hits"][0]["passage_id"] == "rollback:0"
