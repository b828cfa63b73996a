"""Limits and robustness: one error shape on every endpoint, bounded bodies and queries, no 500 from input."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from rolesearch.api.app import create_app
from rolesearch.api.models import ErrorResponse
from rolesearch.settings import Settings


@pytest.fixture
def client(small_index, small_corpus, embedder):
    app = create_app(Settings(index_dir=small_index, corpus_dir=small_corpus, max_body_bytes=8192), embedder=embedder)
    with TestClient(app) as c:
        yield c


def _error(r, status: int):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"detail"} and body["detail"]
    ErrorResponse.model_validate(body)
    return body["detail"]


@pytest.mark.parametrize(
    "method, path, kwargs, status",
    [
        ("GET", "/nowhere", {}, 404),
        ("GET", "/articles/nope", {}, 404),
        ("GET", "/static/nope.js", {}, 404),
        ("DELETE", "/search", {}, 405),
        ("PUT", "/healthz", {}, 405),
        ("POST", "/metrics", {}, 405),
        ("GET", "/search", {"params": {"q": "ok", "k": 51}}, 422),
        ("POST", "/search", {"json": {"q": "ok", "mode": "magic"}}, 422),
        ("POST", "/search", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
        ("POST", "/search", {"json": {"q": "x" * 9000}}, 413),
    ],
)
def test_every_error_has_the_one_shape(client, method, path, kwargs, status):
    _error(client.request(method, path, **kwargs), status)


def test_service_unavailable_has_the_one_shape(tmp_path, embedder):
    with TestClient(create_app(Settings(index_dir=tmp_path / "none"), embedder=embedder)) as c:
        for path in ("/search?q=rollback", "/readyz", "/articles", "/articles/rollback"):
            assert "rolesearch ingest" in _error(c.get(path), 503)
        assert c.get("/").status_code == 200 and c.get("/metrics").status_code == 200


def test_unexpected_errors_have_the_one_shape(client):
    @client.app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    with TestClient(client.app, raise_server_exceptions=False) as c:
        assert _error(c.get("/boom"), 500) == "internal server error"


def test_errors_are_documented_in_the_openapi_schema(client):
    schema = client.get("/openapi.json").json()
    ops = schema["paths"]["/search"]
    for method in ("get", "post"):
        responses = ops[method]["responses"]
        assert set(responses) >= {"200", "413", "422", "503"}
        assert responses["503"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
    assert "404" in schema["paths"]["/articles/{article_id}"]["get"]["responses"]


def test_body_over_the_limit_is_413_by_length_and_while_streaming(client):
    detail = _error(client.post("/search", content=b" " * 9000, headers={"content-type": "application/json"}), 413)
    assert detail == "request body is 9,000 bytes, over the limit of 8,192 bytes"

    def chunks():  # no Content-Length: the limit holds while the body streams in
        for _ in range(10):
            yield b" " * 1000

    r = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert _error(r, 413) == "request body is larger, over the limit of 8,192 bytes"
    # Under the limit is fine.
    assert client.post("/search", json={"q": "who rolls back a bad release?", "k": 1}).status_code == 200


@pytest.mark.parametrize(
    "q, message",
    [
        ("x" * 5000, "at most 1000 characters"),
        ("x" * 1001, "at most 1000 characters"),
        ("bell\x07 rollback", "control characters"),
        ("\x1b[31mred\x1b[0m", "control characters"),
        ("\x00", "control characters"),
        ("\u00a0 \t\u3000", "blank"),
    ],
)
def test_bad_queries_are_422_with_a_message(client, q, message):
    for r in (client.get("/search", params={"q": q}), client.post("/search", json={"q": q})):
        detail = _error(r, 422)
        assert message in detail[0]["msg"]
        _not_echoed(q, detail, r.text)


def _strings(value) -> list[str]:
    """Every string in a decoded JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _not_echoed(q: str, detail, raw: str) -> None:
    """The input is not in the error, as itself or in any escaped form (repr, JSON, unicode_escape): the
    decoded strings are searched, not a repr of them, so a control character or a U+3000 is found too."""
    assert all("input" not in e for e in detail), detail
    forms = {q, repr(q)[1:-1], json.dumps(q)[1:-1], json.dumps(q, ensure_ascii=False)[1:-1],
             q.encode("unicode_escape").decode("ascii")}
    for text in _strings(detail):
        for form in forms:
            assert form not in text, f"the input is echoed: {text[:120]!r}"
    for form in forms - {q}:
        assert form not in raw, f"the input is echoed: {raw[:120]!r}"


@pytest.mark.parametrize(
    "q",
    [
        "who rolls back a bad model release? 🚀🔥",
        "<script>alert('rollback')</script>",
        "'; DROP TABLE passages; -- rollback",
        "%00 %ZZ {{7*7}} ${rollback}",
        "רולבק של מודל rollback",
        "?!.,;",
        "rollback " * 100,
        "\u202eknabllor\u202c model",
    ],
)
def test_odd_queries_get_a_normal_answer(client, q):
    for r in (client.get("/search", params={"q": q, "k": 3}), client.post("/search", json={"q": q, "k": 3})):
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["query"] == q
        assert len(body["hits"]) >= 1


@pytest.mark.parametrize(
    "raw",
    [b'{"q": "\\ud800 rollback"}', b'{"q": "ok", "k": 1e400}', b'{"q": "ok", "k": NaN}',
     b'{"q": ["a"]}', b'{"q": "ok", "\\udfff": 1}', b'"just a string"', b"[]", b"null"],
)
def test_odd_bodies_are_422_not_500(client, raw):
    _error(client.post("/search", content=raw, headers={"content-type": "application/json"}), 422)


def test_body_that_is_not_utf8_is_400(client):
    r = client.post("/search", content='{"q": "caf\xe9"}'.encode("latin-1"), headers={"content-type": "application/json"})
    assert _error(r, 400) == "There was an error parsing the body"


ODD_QUERY_STRINGS = [  # (query string, the parameter named, words of the message)
    ("q=ok&k=1e9", "k", "valid integer"),
    ("q=ok&k=-1", "k", "greater than or equal to 1"),
    ("q=ok&k=0", "k", "greater than or equal to 1"),
    ("q=ok&k=51", "k", "less than or equal to 50"),
    ("q=ok&k=2.5", "k", "valid integer"),
    ("q=" + "%F0%9F%98%80" * 2000, "q", "at most 1000 characters"),  # 2,000 characters, 8,000 bytes
    ("q=" + "x" * 2000, "q", "at most 1000 characters"),
]


def test_odd_query_strings_are_422_naming_the_parameter(client):
    for qs, loc, message in ODD_QUERY_STRINGS:
        detail = _error(client.get("/search?" + qs), 422)
        assert [e["loc"] for e in detail] == [["query", loc]] and message in detail[0]["msg"], (qs[:30], detail)


def test_odd_but_valid_query_strings_are_answered(client):
    # Bytes that are not UTF-8 are decoded with U+FFFD, as browsers do; a repeated parameter: the last one.
    for qs, query, k in (("q=%ED%A0%80", "\ufffd" * 3, 5), ("q=%FF%FE", "\ufffd" * 2, 5),
                         ("q=ok&q=two&k=1&k=2", "two", 2), ("q=ok&k=50", "ok", 50)):
        r = client.get("/search?" + qs)
        assert r.status_code == 200, (qs, r.text)
        assert r.json()["query"] == query and 1 <= len(r.json()["hits"]) <= k, qs
