"""One settings object for the service and the CLI, read from ROLESEARCH_* environment variables."""

from __future__ import annotations

import json
import os
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rolesearch.encoder.base import DEFAULT_BACKEND, DEFAULT_MODEL, Encoder
from rolesearch.encoder.spec import EncoderSpec
from rolesearch.ingest.access import AccessMap
from rolesearch.ingest.cache import DEFAULT_MAX_ENTRIES
from rolesearch.ingest.chunking import ChunkingParams
from rolesearch.search.answers import AnswerConfig
from rolesearch.search.searcher import SearchConfig
from rolesearch.store.ann import AnnParams
from rolesearch.store.roles import RoleConfig


class Settings(BaseSettings):
    """Defaults that just work from the project root; every field can be set as ROLESEARCH_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="ROLESEARCH_", extra="ignore")

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    model: str = DEFAULT_MODEL
    device: str = "cpu"
    batch_size: int = Field(32, ge=1, le=1024)
    # Encoder: "onnx" (ONNX Runtime, the model exported once and cached), "onnx-int8" (dynamic int8) or "torch".
    backend: Literal["torch", "onnx", "onnx-int8"] = DEFAULT_BACKEND
    onnx_cache: Path | None = None  # folder of ONNX exports (None: ~/.cache/rolesearch/onnx)
    max_tokens: int = Field(200, ge=16, le=8192)
    min_item_tokens: int = Field(40, ge=0)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_query_chars: int = Field(1000, ge=1)
    max_k: int = Field(50, ge=1)

    fusion: Literal["rrf", "convex"] = "convex"
    rrf_k: float = 60.0
    alpha: float = Field(0.6, ge=0.0, le=1.0)
    normalization: Literal["minmax", "max", "zscore", "rank"] = "minmax"  # convex: how each ranker's scores are scaled
    top1_guard: bool = False  # hybrid: each ranker's top-1 kept in the top 3 when the other ranks it below 10
    candidates: int = Field(100, ge=1)
    rrf_dense_weight: float = Field(1.0, ge=0.0)
    max_per_section: int = Field(2, ge=0)
    sentence_vectors: bool = True  # also score a passage by its sentences' vectors (when indexed)
    sentence_weight: float = Field(0.6, ge=0.0, le=1.0)  # share of the best sentence in a passage's dense score
    section_weight: float = Field(0.25, ge=0.0)  # lexical weight of the heading path (passage text: 1)
    title_weight: float = Field(0.25, ge=0.0)  # lexical weight of the article title
    role_prior: float = Field(0.1, ge=0.0)  # hybrid, ownership questions: boost of passages naming a role's duty

    # Dense index type: "auto" is exact scoring below index_exact_below rows, IVF-SQ8 above (docs/performance.md).
    index_type: Literal["auto", "flat", "hnsw", "ivf"] = "auto"
    index_exact_below: int = Field(AnnParams.exact_below, ge=0)
    # IVF lists a query visits: written into new versions' manifests, and when set, also overrides the
    # served version's own value (a recall/latency trade-off that needs no rebuild).
    index_nprobe: int | None = Field(None, ge=1)

    # Index lifecycle: hot reload, admin reindex, embedding cache.
    reload_interval: float = Field(1.0, ge=0.0, description="Seconds between checks of index/CURRENT; 0 turns hot reload off")
    admin_token: SecretStr | None = Field(None, description="Bearer token for /admin/*; unset turns them off")
    cache_max_entries: int = Field(DEFAULT_MAX_ENTRIES, ge=0, description="Vectors kept in the embedding cache")
    roles_file: Path | None = None  # None: the packaged store/roles.yaml
    # A YAML list of sources to ingest (docs/sources.md); None: the folder corpus_dir.
    sources_file: Path | None = None
    answer_passages: int = Field(5, ge=1, le=50)  # top hits an answer aggregates roles over
    answer_min_dense: float = Field(0.22, ge=-1.0, le=1.0)  # below this best cosine: not answerable
    # Browser origins (e.g. the wiki's) allowed to call the API; comma-separated or a JSON list. None by default.
    cors_origins: Annotated[list[str], NoDecode] = []
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body accepted; more is a 413")
    access_log: bool = True
    # Intra-op threads for torch in the server. One per query lets concurrent queries use the cores side by
    # side; more makes each query spin-wait on the others (measured: 20 ms -> 400 ms on a busy 2-core box).
    # The same holds for ONNX Runtime's intra-op threads in the server (ingest keeps one per core).
    torch_threads: int = Field(1, ge=0, description="0 leaves torch's default")
    # Query encodings run at once; more wait their turn (0: no limit). One per core keeps the cores busy.
    query_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=0)
    # Queries that wait for a free encoding are encoded together, up to this many in one pass (1: one each).
    query_batch: int = Field(16, ge=1, le=256)

    # Who is calling (docs/permissions.md): off = every article public; proxy = user and groups from the headers
    # of an authenticating proxy at one of trusted_proxies; token = bearer tokens listed (hashed) in auth_tokens_file.
    auth: Literal["off", "proxy", "token"] = "off"
    auth_user_header: str = "X-Forwarded-User"
    auth_groups_header: str = "X-Forwarded-Groups"  # comma-separated group names
    # Addresses or CIDRs of the proxies whose identity headers are believed; comma-separated or a JSON list.
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = []
    auth_tokens_file: Path = Path("tokens.json")  # `rolesearch token add` writes it
    access_map_file: Path | None = None  # ingest: groups for articles by title, URL or path pattern (ingest/access.py)
    facet_hits: int = Field(20, ge=1, le=50, description="Top hits the page's facet counts are taken over")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, v):
        if isinstance(v, str):
            v = json.loads(v) if v.strip().startswith("[") else [p for p in v.split(",") if p.strip()]
        try:
            return [ip_network(str(p).strip(), strict=False) for p in v]
        except ValueError as exc:
            raise ValueError(f"trusted_proxies: {exc} (give addresses or CIDRs, e.g. 10.0.0.5,10.1.0.0/16)") from exc

    @model_validator(mode="after")
    def _proxy_needs_trusted_peers(self):
        if self.auth == "proxy" and not self.trusted_proxies:
            raise ValueError("ROLESEARCH_AUTH=proxy needs ROLESEARCH_TRUSTED_PROXIES (the proxy's addresses or CIDRs): "
                             "identity headers from any other peer are refused")
        return self

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, v):
        if isinstance(v, str):
            v = v.strip()
            if v.startswith("["):
                return json.loads(v)
            return [o.strip().rstrip("/") for o in v.split(",") if o.strip()]
        return v

    def embedder_spec(self) -> EncoderSpec:
        """How to load the model these settings ask for (in this process or in a worker)."""
        return EncoderSpec(self.model, self.device, self.batch_size, self.backend,
                            onnx_cache=str(self.onnx_cache) if self.onnx_cache else None)

    def embedder(self) -> Encoder:
        """The model these settings ask for, loaded."""
        return self.embedder_spec().load()

    def ann_params(self) -> AnnParams:
        """Which dense index type builds make (by size, or forced)."""
        return AnnParams(kind=self.index_type, exact_below=self.index_exact_below,
                         ivf_nprobe=self.index_nprobe or AnnParams.ivf_nprobe)

    def chunking(self) -> ChunkingParams:
        """The chunking parameters these settings ask for."""
        return ChunkingParams(max_tokens=self.max_tokens, min_item_tokens=self.min_item_tokens)

    def search_config(self) -> SearchConfig:
        """The ranking knobs these settings ask for."""
        return SearchConfig(
            candidates=self.candidates, fusion=self.fusion, rrf_k=self.rrf_k, rrf_dense_weight=self.rrf_dense_weight,
            alpha=self.alpha, normalization=self.normalization, top1_guard=self.top1_guard,
            max_per_section=self.max_per_section, sentence_vectors=self.sentence_vectors,
            sentence_weight=self.sentence_weight,
            role_prior=self.role_prior, section_weight=self.section_weight, title_weight=self.title_weight,
        )

    def answer_config(self) -> AnswerConfig:
        """How answers are formed."""
        return AnswerConfig(passages=self.answer_passages, min_dense=self.answer_min_dense)

    def sources(self, specs: list[str] | None = None) -> list | None:
        """The sources to ingest: specs (`KIND:LOCATION`), else the sources file, else None (the folder corpus)."""
        from rolesearch.ingest.sources import load_sources_file, parse_source

        state_dir = self.index_dir / "cache"  # the crawl's validators live beside the embedding cache
        if specs:
            return [parse_source(spec, state_dir) for spec in specs]
        if self.sources_file is not None:
            return load_sources_file(self.sources_file, state_dir)
        return None

    def access_map(self) -> AccessMap:
        """The access mapping applied at ingest (none configured: no rules)."""
        return AccessMap.load(self.access_map_file) if self.access_map_file is not None else AccessMap()

    def role_config(self) -> RoleConfig:
        """The roles and aliases to attribute at ingest."""
        return RoleConfig.load(self.roles_file)
