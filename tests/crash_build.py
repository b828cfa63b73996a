"""Run `rolesearch ingest` and SIGKILL this process at a named point of the build (crash tests).

    python tests/crash_build.py POINT rolesearch-ingest-args...

The points wrap the real functions the build calls; the kill is a real SIGKILL of this
process, so nothing gets to clean up: exactly what a crash, an OOM kill or a power cut leaves.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rolesearch.ingest import cache, pipeline  # noqa: E402
from rolesearch.store import ann, publish  # noqa: E402


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def after(fn):
    def wrapper(*args, **kwargs):
        fn(*args, **kwargs)
        die()
    return wrapper


def before(fn, when=lambda *a, **k: True):
    def wrapper(*args, **kwargs):
        if when(*args, **kwargs):
            die()
        return fn(*args, **kwargs)
    return wrapper


POINTS = {
    # the first group of new vectors is committed to the cache, the rest is not embedded yet
    "embedding": lambda: setattr(cache.EmbeddingCache, "put_many", after(cache.EmbeddingCache.put_many)),
    # passages and vectors are in versions/.tmp-<id>/, the dense index and manifest are not
    "writing": lambda: setattr(ann.faiss, "write_index", before(ann.faiss.write_index)),
    # the version folder is complete under its final name, CURRENT still names the old one
    "publishing": lambda: setattr(pipeline, "publish", before(pipeline.publish)),
    # the new pointer is written and fsynced beside CURRENT, not yet renamed over it
    "pointer": lambda: setattr(os, "replace", before(os.replace, lambda src, dst, **k: Path(dst).name == "CURRENT")),
    # CURRENT names the new version; pruning had renamed an old version away but not deleted it
    "pruning": lambda: setattr(publish.shutil, "rmtree", before(publish.shutil.rmtree)),
}

if __name__ == "__main__":
    point, args = sys.argv[1], sys.argv[2:]
    POINTS[point]()
    from rolesearch.cli.main import main

    sys.argv = ["rolesearch", *args]
    main()
