"""Opaque token names for the proxy task's words. Task image only: never in a candidate image.

The candidate trains from the reference artifact's tokenizer and pairs, which it can read. If
the tokenizer named its tokens after the words (`want-warm`, `sun`, `snow`) in the lexicon's
order, a loss could rebuild the reward from /in alone. So every word is renamed `tNN`, the
numbering following a keyed permutation (an HMAC of each word under a key derived from the
engine's task secret): neither the names nor the token ids say which class a word belongs to.
The mapping is written to the artifact's eval/ part, which only the evaluation container mounts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

LEXICON_FILE = "lexicon.json"


class Lexicon:
    """word <-> opaque token name, for the text the proxy task samples and scores."""

    def __init__(self, names: dict[str, str]):
        self.names = names
        self.words = {name: word for word, name in names.items()}

    @classmethod
    def keyed(cls, words: list[str], key: bytes) -> Lexicon:
        """Names numbered in the order of HMAC(key, word): a secret permutation of the words."""
        order = sorted(words, key=lambda word: hmac.new(key, word.encode(), hashlib.sha256).digest())
        width = len(str(len(order) - 1))
        return cls({word: f"t{index:0{width}d}" for index, word in enumerate(order)})

    def tokens(self) -> list[str]:
        """The token names in vocabulary order (the order reveals nothing: it is the permutation's)."""
        return sorted(self.words)

    def encode(self, text: str) -> str:
        return " ".join(self.names[word] for word in text.split())

    def decode(self, text: str) -> str:
        return " ".join(self.words[name] for name in text.split())

    def save(self, directory: Path) -> None:
        (directory / LEXICON_FILE).write_text(json.dumps(self.names, sort_keys=True))

    @classmethod
    def load(cls, directory: Path) -> Lexicon:
        return cls(json.loads((directory / LEXICON_FILE).read_text()))
