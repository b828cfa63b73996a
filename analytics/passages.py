"""A passage of the served version found by its id (article id, ":", position), for evidence and exports."""

from __future__ import annotations

import numpy as np

from rolesearch.store.passage import Passage
from rolesearch.store.passage_table import PassageTable


def find_passage(passages: PassageTable, pid: str) -> Passage | None:
    """The passage with this id, looked for among its article's rows only; None when the version lacks it."""
    aid = pid.rpartition(":")[0]
    if aid not in passages.article_names:
        return None
    for row in np.flatnonzero(passages.article_mask([aid])):
        p = passages[int(row)]
        if p.id == pid:
            return p
    return None
