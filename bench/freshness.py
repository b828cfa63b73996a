"""Freshness: the time from an edit saved in the wiki to the first /search that returns the new text.

    .venv/bin/python bench/freshness.py [--edits 10] [--interval 5]

On the real test wiki (Debian's MediaWiki, tests/mediawiki.py) with the RoleSearch extension loaded, and
rolesearch served in this process over the wiki's Action API (`mediawiki:` source, main and Ops namespaces). Each edit is saved through the wiki's web API
(api.php, as a user would); the clock starts when the save returns and stops at the first anonymous
/search whose hits hold the edit's new words (asked every 50 ms). Two runs:

- push: the extension's job posts the page to POST /admin/notify; rolesearch has no periodic sync.
  Target: p50 <= 5 s.
- poll: the wiki pushes nothing (its rolesearch URL answers nothing); `serve --sync-every INTERVAL` finds
  the edit. Edits come at random moments of the interval. Target: max <= interval + 10 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from rolesearch.encoder.spec import EncoderSpec  # noqa: E402
from tests.wiki_extension import (  # noqa: E402
    Server,
    WikiEditor,
    running_wiki,
    serve_settings,
    sources_file,
    synced_server,
)

PAGE = "Freshness log"


def found(server: Server, words: str) -> bool:
    hits = httpx.get(server.url + "/search", params={"q": words, "k": 3}, timeout=30).json()["hits"]
    return any(words in h["text"] for h in hits)


def run(mode: str, wiki, embedder, folder: Path, edits: int, interval: float, rng: random.Random) -> list[float]:
    """Seconds from each saved edit to the first /search that has it."""
    s = serve_settings(folder / "index", sources_file(wiki, folder), sync_interval=interval if mode == "poll" else 0)
    editor = WikiEditor(wiki)
    seconds = []
    with synced_server(wiki, s, embedder, push=mode == "push") as server:
        for i in range(edits):
            if mode == "poll":
                time.sleep(rng.uniform(0, interval))  # a random phase of the sync's cycle
            token = f"{mode} shift {i} {rng.randrange(10**6)}"
            words = f"quartermaster of the {token} owns the spare parts"
            editor.edit(PAGE, f"The {words} and signs for every delivery.")
            t0 = time.monotonic()
            while not found(server, words):
                if time.monotonic() - t0 > 120:
                    raise SystemExit(f"{mode}: edit {i} not searchable after 120 s")
                time.sleep(0.05)
            seconds.append(time.monotonic() - t0)
            print(f"  {mode} edit {i + 1}: {seconds[-1]:.2f} s", flush=True)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--edits", type=int, default=10)
    ap.add_argument("--interval", type=float, default=5.0, help="--sync-every of the poll run (seconds)")
    ap.add_argument("--seed", type=int, default=19)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    embedder = EncoderSpec().load()
    with tempfile.TemporaryDirectory(prefix="freshness-") as tmp, running_wiki(Path(tmp) / "wiki") as wiki:
        editor = WikiEditor(wiki)
        editor.edit(PAGE, "The quartermaster owns the spare parts.")
        results = {}
        for mode in ("push", "poll"):
            print(f"{mode}:", flush=True)
            results[mode] = run(mode, wiki, embedder, Path(tmp) / mode, args.edits, args.interval, rng)
    print(f"\nedit saved -> first /search with the new text, {args.edits} edits each")
    push, poll = results["push"], results["poll"]
    print(
        f"push (POST /admin/notify):   p50 {statistics.median(push):.2f} s   max {max(push):.2f} s   "
        f"target p50 <= 5 s: {'met' if statistics.median(push) <= 5 else 'MISSED'}"
    )
    print(
        f"poll (--sync-every {args.interval:g}):      p50 {statistics.median(poll):.2f} s   max {max(poll):.2f} s   "
        f"target max <= {args.interval + 10:g} s: {'met' if max(poll) <= args.interval + 10 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
