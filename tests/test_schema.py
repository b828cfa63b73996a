"""Property-based test of the HTTP API from its own OpenAPI schema (schemathesis), against a small index."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from rolesearch.api.app import create_app
from rolesearch.settings import Settings

EXAMPLES = 40  # per operation and mode: enough to hit the edges, about a minute in all


@pytest.mark.slow
@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
                         ids=["valid-input", "invalid-input"])
def test_api_conforms_to_its_schema(small_index, small_corpus, embedder, mode):
    # Strategies per operation rather than schemathesis' pytest fixture loader, which the
    # installed pytest no longer supports; the checks are the same.
    app = create_app(Settings(index_dir=small_index, corpus_dir=small_corpus, access_log=False), embedder=embedder)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"GET /search", "POST /search", "GET /healthz", "GET /readyz",
                                               "GET /metrics", "GET /articles", "GET /articles/{article_id}"}
    skipped: list[str] = []
    for op in operations:

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            # Every check schemathesis has: no 5xx; status codes, content types and bodies as
            # documented; invalid input refused; valid input accepted.
            case.call_and_validate()

        try:
            check()
        except Unsatisfiable:
            # No input of this operation can be invalid (no parameters, or any string goes).
            assert mode is schemathesis.GenerationMode.NEGATIVE, op.label
            skipped.append(op.label)
        except Exception as exc:
            raise AssertionError(f"{op.label} ({mode.value} input): {exc}") from exc
    assert "GET /search" not in skipped and "POST /search" not in skipped
