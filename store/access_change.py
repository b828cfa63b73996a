"""Whether a new set of articles (a build, a rollback) would let more people read any of them, and the audit
log of the times someone allowed it.

An article's readers are the members of its groups, or everyone when it has none. It becomes readable by
more readers when it turns public, or gains a group it did not have (groups are alternatives: one more group,
more readers). Articles only in the new set are new, not widened; articles only in the old set are gone.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from rolesearch.store.manifest import StoreError

AUDIT_FILE = "audit.jsonl"  # in the index folder, beside CURRENT: one JSON object per line


class AccessWidened(StoreError):
    """Publishing would let more readers see some articles; `articles` maps id -> (groups now, groups after)."""

    def __init__(self, what: str, articles: dict[str, tuple[list[str], list[str]]], flag: str):
        self.articles = articles
        shown = "; ".join(f"{aid}: {_groups(old)} -> {_groups(new)}"
                          for aid, (old, new) in sorted(articles.items())[:20])
        more = f" (and {len(articles) - 20} more)" if len(articles) > 20 else ""
        super().__init__(f"{what} would let more readers see {len(articles)} article(s): {shown}{more}; "
                         f"refused (pass {flag} to publish it anyway)")


def _groups(groups: list[str]) -> str:
    return "public" if not groups else "[" + ", ".join(groups) + "]"


def widened(old: dict, new: dict) -> dict[str, tuple[list[str], list[str]]]:
    """Articles in both manifests' article maps whose readers grow from old to new: id -> (old groups, new groups).

    A manifest entry without "access" (built before permissions) is public.
    """
    out = {}
    for aid, entry in new.items():
        before = old.get(aid)
        if before is None:
            continue
        was, now = set(before.get("access") or ()), set(entry.get("access") or ())
        if was and (not now or not now <= was):
            out[aid] = (sorted(was), sorted(now))
    return out


def audit(index_dir: Path, action: str, **fields) -> dict:
    """Append one record (time, action, fields) to the index folder's audit log; the record."""
    record = {"ts": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "action": action} | fields
    path = Path(index_dir) / AUDIT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return record


def read_audit(index_dir: Path) -> list[dict]:
    """The audit log's records, oldest first (none when there is no log)."""
    try:
        lines = (Path(index_dir) / AUDIT_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]
