"""Identity of candidate code and of archive records.

`code_id`: the same program written with other spacing or comments gets the same id, so the loop
can refuse to evaluate it twice, and an evaluation's directory (`candidates/<code id>/`) is
shared by identical code. `record_id`: one per archive record, never shared: duplicates and
replies without code are records of their own.
"""

from __future__ import annotations

import ast
import hashlib
import io
import tokenize

from engine import pyast

_SKIPPED_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                   tokenize.ENCODING, tokenize.ENDMARKER}


def normalise_code(code: str | pyast.Source) -> str:
    """Canonical text of `code` (parsed here unless given as a Source): the AST unparsed when it
    parses (comments, blank lines and layout gone), else its tokens joined by single spaces, and
    from the first tokenizer error on the rest of the text with its whitespace collapsed: two
    programs that differ after the error never get the same text."""
    source = code if isinstance(code, pyast.Source) else pyast.Source.parse(code)
    if source.tree is not None:
        return ast.unparse(source.tree)
    code = source.code
    kept: list[str] = []
    line, column = 1, 0  # where the text not yet tokenized starts
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type not in _SKIPPED_TOKENS:
                kept.append(tok.string)
            line, column = tok.end
    except (tokenize.TokenError, IndentationError, SyntaxError):  # e.g. a bad dedent, an unclosed bracket
        rest = "".join(code.splitlines(keepends=True)[line - 1:])[column:]
        kept.extend(rest.split())
    return " ".join(kept)


def code_id(code: str | pyast.Source) -> str:
    """16 hex digits of the SHA-256 of the normalised code (before the gate reads a Source's tree)."""
    return hashlib.sha256(normalise_code(code).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def record_id(generation: int | str, index: int, code: str, *, cid: str | None = None) -> str:
    """The id of the record in archive slot (generation, index): unique in an archive (a slot
    is archived once), the same on every rerun, and it starts like the code's id so the
    evaluation directory is easy to find: `g3-1-ab12cd34` (`init-0-...` for baselines,
    `g3-1-nocode` for a reply without code). `cid`: `code_id(code)` when the caller has it."""
    tag = "init" if generation == "initial" else f"g{generation}"
    return f"{tag}-{index}-{(cid or code_id(code))[:8] if code.strip() else 'nocode'}"
