"""Settings: defaults taken from the dataclasses the code runs with, the documented table, and the served searcher."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic_core import PydanticUndefined

from rolesearch.encoder.spec import EncoderSpec
from rolesearch.ingest.chunking import ChunkingParams
from rolesearch.search.answers import AnswerConfig
from rolesearch.search.searcher import SearchConfig
from rolesearch.settings import Settings
from rolesearch.store.ann import AnnParams
from rolesearch.store.manifest import StoreError

OPERATIONS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


@pytest.fixture
def clean_env(monkeypatch):
    """No ROLESEARCH_* variable from the caller's shell, so Settings() shows the code's defaults."""
    for name in list(os.environ):
        if name.startswith("ROLESEARCH_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_dataclasses(clean_env):
    s = Settings()
    assert s.search_config() == SearchConfig()
    assert s.chunking() == ChunkingParams()
    assert s.answer_config() == AnswerConfig()
    assert s.ann_params() == AnnParams()
    spec, default = s.embedder_spec(), EncoderSpec()
    assert (spec.model, spec.device, spec.backend, spec.batch_size, spec.onnx_cache) == \
        (default.model, default.device, default.backend, default.batch_size, default.onnx_cache)


def test_nprobe_unset_builds_with_the_default_and_set_overrides(clean_env):
    assert Settings().index_nprobe is None
    assert Settings().ann_params().ivf_nprobe == AnnParams.ivf_nprobe
    assert Settings(index_nprobe=7).ann_params().ivf_nprobe == 7


def test_open_searcher_serves_the_versions_own_nprobe_unless_set(clean_env, small_corpus, tmp_path, embedder):
    from rolesearch.ingest.pipeline import build_index

    index_dir = tmp_path / "index"
    build_index(small_corpus, index_dir, embedder, ann_params=Settings(index_nprobe=7).ann_params())
    own = Settings(index_dir=index_dir).open_searcher(embedder)
    assert own.index.ann_params.ivf_nprobe == 7
    assert own.config == SearchConfig() and own.embedder is embedder
    assert Settings(index_dir=index_dir, index_nprobe=3).open_searcher(embedder).index.ann_params.ivf_nprobe == 3
    assert Settings(alpha=0.3).open_searcher(embedder, index_dir=index_dir).config.alpha == 0.3


def test_open_searcher_fails_before_loading_the_model(clean_env, tmp_path, monkeypatch):
    def no_model(self):
        raise AssertionError("the model was loaded for an index that cannot be served")

    monkeypatch.setattr(Settings, "embedder", no_model)
    with pytest.raises(StoreError):
        Settings(index_dir=tmp_path / "none").open_searcher()


def test_dead_settings_gone_and_threads_variable_kept(clean_env, monkeypatch):
    assert "max_query_chars" not in Settings.model_fields and "max_k" not in Settings.model_fields
    monkeypatch.setenv("ROLESEARCH_TORCH_THREADS", "3")
    assert Settings().torch_threads == 3


def _configuration_section() -> str:
    """docs/operations.md from its "## Configuration" heading to the next section."""
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text[text.index("## Configuration\n"):]
    section = section[:section.find("\n## ", 1)]
    return section


def _documented() -> dict[str, tuple[str, str]]:
    """The settings table of docs/operations.md: variable -> (default, what it does), backticks dropped."""
    rows = {}
    for line in _configuration_section().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 3 and cells[0].startswith("`ROLESEARCH_"):
            rows[cells[0].strip("`")] = (cells[1].strip("`"), cells[2])
    return rows


def _shown(default) -> str | None:
    """How the table writes a simple default (None: not a simple value, not compared)."""
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, (str, int, float, Path)):
        return str(default)
    return None


def test_operations_table_lists_every_setting_with_its_default():
    documented = _documented()
    fields = {f"ROLESEARCH_{name.upper()}": field for name, field in Settings.model_fields.items()}
    expected_rows = "\n".join(f"| `{var}` | {_shown(f.default) or '?'} | {f.description} |"
                              for var, f in fields.items() if var not in documented)
    assert not expected_rows, f"settings missing from docs/operations.md:\n{expected_rows}"
    assert set(documented) == set(fields), f"documented but not settings: {sorted(set(documented) - set(fields))}"
    for var, field in fields.items():
        default, what = documented[var]
        assert field.description and what == field.description, f"{var}: the table and Field(description=) differ"
        if field.default is PydanticUndefined:  # a default_factory, e.g. the number of cores
            assert default, var
        elif _shown(field.default) is not None:
            assert default == _shown(field.default), f"{var}: documented {default!r}, code {field.default!r}"
        elif field.default == []:
            assert default == "empty", var


def test_table_rows_are_one_per_setting():
    variables = re.findall(r"^\| `(ROLESEARCH_[A-Z0-9_]+)`", _configuration_section(), flags=re.M)
    assert len(variables) == len(set(variables)) == len(Settings.model_fields)
