"""A version's manifest: what it was built from and with, checked on load; where versions live; the store's errors."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

# 2: sentences.npy (sentence vectors of every passage) and manifest "sentences".
FORMAT = 2


class StoreError(Exception):
    """Base for index problems the caller can report to a user."""


class IndexNotFound(StoreError):
    """No published index at that folder."""


class IndexMismatch(StoreError):
    """The index was built with other settings than the ones configured."""


class IndexCorrupt(StoreError):
    """A published index whose files do not agree with its manifest."""


class IndexBusy(StoreError):
    """Another build holds the lock."""


@dataclass
class Manifest:
    """What a build was made from and with; checked on load."""

    version: str
    built_at: str
    model: str
    dimension: int
    max_model_tokens: int
    chunking: dict
    articles: dict  # id -> {"path", "hash", "title", "url", "publisher", "date", "tags", "passages"}
    passages: int
    format: int = FORMAT
    skipped: dict = field(default_factory=dict)  # path -> reason
    lexical: dict | None = None
    sentences: int = 0  # rows of sentences.npy (0: no sentence vectors)
    ann: dict | None = None  # {"passages": {kind, rows, ...}, "sentences": {...}, "params": AnnParams}; None: flat
    vectors: str = ""  # the vector space: model, plus "#int8-f<export format>" for the quantised encoder ("": same as model)
    roles: str = ""  # fingerprint of the role configuration the passages' roles come from ("": unknown)
    access_map: dict | None = None  # the access map in force at the build: {path, sha256, rules}; None: no map
    # The sentence rows' own vector space when it is not `vectors` (e.g. "<model>#int8-f2": sentences encoded by the
    # int8 encoder, passages and queries fp32); "": the same as `vectors`.
    sentence_vectors: str = ""
    sentence_units: dict | None = None  # store.sentences.SentenceParams of the rows (None: every sentence a row)

    def sentence_space(self) -> str:
        """The vector space of the sentence rows (what a cache or the next build must match to reuse them)."""
        return self.sentence_vectors or self.vectors or self.model

    def to_json(self) -> str:
        # Field by field: asdict deep-copies every article entry first (seconds at 100k articles).
        return json.dumps({f: getattr(self, f) for f in self.__dataclass_fields__}, indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict) -> "Manifest":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def new_version_id() -> str:
    """Sortable and unique: UTC time to the microsecond plus a random suffix."""
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def current_version(index_dir: Path) -> str | None:
    """The published version id, or None when nothing is published."""
    try:
        vid = (Path(index_dir) / "CURRENT").read_text().strip()
    except FileNotFoundError:
        return None
    return vid or None


def version_dir(index_dir: Path, version: str) -> Path:
    return Path(index_dir) / "versions" / version


def read_manifest(index_dir: Path, version: str | None = None) -> Manifest:
    """The manifest of a version (default: the published one)."""
    version = version or current_version(index_dir)
    if version is None:
        raise IndexNotFound(f"no index at {index_dir}: run `rolesearch ingest` to build one")
    path = version_dir(index_dir, version) / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexCorrupt(f"published version {version} has no manifest: run `rolesearch ingest`") from exc
    except json.JSONDecodeError as exc:
        raise IndexCorrupt(f"manifest of {version} is not valid JSON: run `rolesearch ingest`") from exc
    if data.get("format") != FORMAT:
        raise IndexMismatch(
            f"index format {data.get('format')} is not {FORMAT}: run `rolesearch ingest` to rebuild"
        )
    if data.get("version") != version:  # a copied or renamed folder: its files would be read from the other one
        raise IndexCorrupt(f"the manifest in versions/{version} names version {data.get('version')!r}: "
                           "run `rolesearch ingest`")
    return Manifest.from_dict(data)


def check_model(manifest: Manifest, model: str) -> None:
    """Refuse an index whose vectors come from another model than the one configured."""
    if manifest.model != model:
        raise IndexMismatch(
            f"the index was built with model {manifest.model!r} but {model!r} is configured: "
            "run `rolesearch ingest` to rebuild it with the configured model"
        )
