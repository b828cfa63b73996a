"""One settings object for the service and the CLI, read from ROLESEARCH_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.cache import DEFAULT_MAX_ENTRIES
from ingest.chunking import ChunkingParams
from ingest.embedding import DEFAULT_MODEL
from ingest.roles import RoleConfig
from search.answers import AnswerConfig
from search.searcher import SearchConfig


class Settings(BaseSettings):
    """Defaults that just work from the project root; every field can be set as ROLESEARCH_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="ROLESEARCH_", extra="ignore")

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    model: str = DEFAULT_MODEL
    device: str = "cpu"
    batch_size: int = Field(32, ge=1, le=1024)
    max_tokens: int = Field(200, ge=16, le=8192)
    min_item_tokens: int = Field(40, ge=0)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_query_chars: int = Field(1000, ge=1)
    max_k: int = Field(50, ge=1)

    fusion: Literal["rrf", "convex"] = "convex"
    rrf_k: float = 60.0
    alpha: float = Field(0.4, ge=0.0, le=1.0)
    candidates: int = Field(100, ge=1)
    rrf_dense_weight: float = Field(1.0, ge=0.0)
    max_per_section: int = Field(2, ge=0)

    # Index lifecycle: hot reload, admin reindex, embedding cache.
    reload_interval: float = Field(1.0, ge=0.0, description="Seconds between checks of index/CURRENT; 0 turns hot reload off")
    admin_token: SecretStr | None = Field(None, description="Bearer token for /admin/*; unset turns them off")
    cache_max_entries: int = Field(DEFAULT_MAX_ENTRIES, ge=0, description="Vectors kept in the embedding cache")
    roles_file: Path | None = None  # None: the packaged ingest/roles.yaml
    answer_passages: int = Field(5, ge=1, le=50)  # top hits an answer aggregates roles over
    answer_min_dense: float = Field(0.22, ge=-1.0, le=1.0)  # below this best cosine: not answerable

    def chunking(self) -> ChunkingParams:
        """The chunking parameters these settings ask for."""
        return ChunkingParams(max_tokens=self.max_tokens, min_item_tokens=self.min_item_tokens)

    def search_config(self) -> SearchConfig:
        """The ranking knobs these settings ask for."""
        return SearchConfig(
            candidates=self.candidates, fusion=self.fusion, rrf_k=self.rrf_k, rrf_dense_weight=self.rrf_dense_weight,
            alpha=self.alpha, max_per_section=self.max_per_section,
        )

    def answer_config(self) -> AnswerConfig:
        """How answers are formed."""
        return AnswerConfig(passages=self.answer_passages, min_dense=self.answer_min_dense)

    def role_config(self) -> RoleConfig:
        """The roles and aliases to attribute at ingest."""
        return RoleConfig.load(self.roles_file)
