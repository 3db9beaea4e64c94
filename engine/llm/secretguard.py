"""Does a text carry the upstream API key in any form a client could decode?

The gateway never relays upstream bytes: error bodies are replaced by a fixed category and
successful replies are rebuilt from the JSON fields it knows. What remains are the strings in
those fields (the assistant's content, the reply id...), which an upstream or a proxy could fill
with the key it received, in plain text or encoded. Matching raw bytes is not enough (a JSON
`\\u0073k-...` escape or a base64 of the key passes it), so a string is decoded into a few views
(backslash escapes, HTML entities, percent-encoding, each up to twice) and every view is searched
for the key as it is, as hex, and as base64 (standard and URL-safe alphabets, at each of the
three byte alignments: only the characters that depend on the key alone are matched, so a key in
the middle of a longer base64 blob is found too). All matching is case-insensitive: a false
alarm on a 20+ character needle is as unlikely as guessing the key.

A reply that leaks is withheld as a whole (502), never patched: a partial redaction of an
encoded form cannot be checked.
"""

from __future__ import annotations

import base64
import html
import re
from urllib.parse import unquote

MIN_SECRET_CHARS = 8  # local servers take any key ("none"); a short one cannot be told from text
_CODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})")
_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_HEX_SEPARATORS = str.maketrans("", "", ":,-")  # "73:6b", "73,6b", "73-6b" (whitespace goes first)


class SecretGuard:
    """`guard.leaks(text)`; a key shorter than MIN_SECRET_CHARS is not guarded (nothing to find)."""

    def __init__(self, secret: str):
        raw = secret.encode()
        self._plain = secret.lower() if len(secret) >= MIN_SECRET_CHARS else ""
        self._hex = raw.hex() if self._plain else ""
        self._base64 = _base64_needles(raw) if self._plain else []

    def __bool__(self) -> bool:
        return bool(self._plain)

    def leaks(self, text: str) -> bool:
        if not self._plain:
            return False
        return any(self._found(view.lower()) for view in _views(text))

    def _found(self, view: str) -> bool:
        if self._plain in view:
            return True
        compact = "".join(view.split())  # base64 wrapped at 76 columns, hex split by spaces
        if any(needle in compact for needle in self._base64):
            return True
        hex_view = compact.replace("0x", "").replace("\\x", "").translate(_HEX_SEPARATORS)  # "0x73, 0x6b", "\\x73"
        return self._hex in hex_view


def _views(text: str) -> set[str]:
    """The text and what each decoder makes of it, applied up to twice in any order. A decoder runs
    only on text holding what it decodes (most replies hold none: the common case costs nothing)."""
    views, frontier = {text}, [text]
    for _ in range(2):
        decoded = [decode(view) for view in frontier for applies, decode in _DECODERS if applies(view)]
        frontier = [view for view in decoded if view not in views]
        views.update(frontier)
    return views


def _unescape(text: str) -> str:
    """JSON / Python backslash escapes (\\u0073, \\x73, \\/ ...); other backslashes are dropped
    (the key holds none, so dropping them can only reveal it)."""
    text = _CODE_ESCAPE.sub(lambda match: chr(int(match.group(1) or match.group(2), 16)), text)
    return text.replace("\\", "")


_DECODERS = ((lambda text: "\\" in text, _unescape),
             (lambda text: "&" in text, html.unescape),
             (lambda text: _PERCENT_ESCAPE.search(text) is not None, unquote))


def _base64_needles(raw: bytes) -> list[str]:
    """For each alignment of the key in a byte stream, the base64 characters set by key bits only."""
    needles = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw + b"\0\0").decode()
        first = -(-8 * offset // 6)               # first character whose 6 bits are all key bits
        last = (8 * (offset + len(raw))) // 6      # one past the last such character
        core = encoded[first:last]
        needles += [core.lower(), core.translate(str.maketrans("+/", "-_")).lower()]
    return needles
