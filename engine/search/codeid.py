"""Content identity of candidate code: the same program written with other spacing or comments
gets the same id, so the loop can refuse to evaluate it twice."""

from __future__ import annotations

import ast
import hashlib
import io
import tokenize

_SKIPPED_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                   tokenize.ENCODING, tokenize.ENDMARKER}


def normalise_code(code: str) -> str:
    """Canonical text of `code`: the AST unparsed when it parses (comments, blank lines and
    layout gone), else its tokens (up to the first tokenizer error) joined by single spaces."""
    try:
        return ast.unparse(ast.parse(code))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    kept: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type not in _SKIPPED_TOKENS:
                kept.append(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):  # e.g. an unclosed bracket at EOF
        if not kept:
            return " ".join(code.split())
    return " ".join(kept)


def code_id(code: str) -> str:
    """16 hex digits of the SHA-256 of the normalised code."""
    return hashlib.sha256(normalise_code(code).encode("utf-8", "surrogatepass")).hexdigest()[:16]
