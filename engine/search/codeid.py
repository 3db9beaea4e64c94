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
    layout gone), else its tokens joined by single spaces, else its whitespace-collapsed text."""
    try:
        return ast.unparse(ast.parse(code))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    try:
        tokens = tokenize.generate_tokens(io.StringIO(code).readline)
        return " ".join(tok.string for tok in tokens if tok.type not in _SKIPPED_TOKENS)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return " ".join(code.split())


def code_id(code: str) -> str:
    """16 hex digits of the SHA-256 of the normalised code."""
    return hashlib.sha256(normalise_code(code).encode("utf-8", "surrogatepass")).hexdigest()[:16]
