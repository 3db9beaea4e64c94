"""A candidate is parsed once per attempt (code id, gate and domain check share the tree), and
the gate, whose RestrictedPython transformer rewrites the tree, neither reaches the domain's
check first nor loses its priority over it."""

from __future__ import annotations

import ast
from collections import Counter

import pytest

from engine import pyast
from engine.llm.scripted import ScriptedLLM
from engine.search.candidate import CandidateFailure, Status
from engine.search.pipeline import static_checks
from engine.search.stop import StopReason
from tests.search.conftest import ToyRunner, proposal, square


class _Seen:
    """A domain whose check records the tree it was handed (and can object to everything)."""

    def __init__(self, objects: bool = False):
        self.objects, self.dumps = objects, []

    def check(self, tree: ast.Module) -> None:
        self.dumps.append(ast.dump(tree))
        if self.objects:
            raise CandidateFailure(Status.INVALID, "domain objects")


def test_every_candidate_is_parsed_once_per_attempt(toy: ToyRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: Counter[str] = Counter()
    real = pyast.parse

    def counting(source: str) -> ast.Module:
        parsed[source] += 1
        return real(source)

    monkeypatch.setattr(pyast, "parse", counting)
    with ScriptedLLM([proposal(square(), name="Square")]) as llm:
        run = toy(llm)
    assert run.reason is StopReason.COMPLETED and len(run.records) == 3
    assert {record.code: parsed[record.code] for record in run.records} == {r.code: 1 for r in run.records}


def test_the_domain_reads_the_tree_as_parsed_not_as_the_gate_rewrote_it() -> None:
    code = "def f(x):\n    a, b = x\n    for i in x:\n        a += i\n    return a\n"
    domain = _Seen()
    static_checks(domain, pyast.Source.parse(code))  # type: ignore[arg-type]
    assert domain.dumps == [ast.dump(ast.parse(code))]


def test_a_gate_violation_is_reported_before_the_domains_objection() -> None:
    with pytest.raises(CandidateFailure) as failure:
        static_checks(_Seen(objects=True), pyast.Source.parse("import subprocess\n"))  # type: ignore[arg-type]
    assert failure.value.reason.startswith("static check:") and "subprocess" in failure.value.reason


def test_the_domains_objection_stands_when_the_gate_passes() -> None:
    with pytest.raises(CandidateFailure, match="domain objects"):
        static_checks(_Seen(objects=True), pyast.Source.parse("def f(x):\n    return x\n"))  # type: ignore[arg-type]


@pytest.mark.parametrize("code", ["def f(x:\n    return x\n", "x = 1\0\n"])
def test_unparsable_code_has_one_wording_everywhere(code: str) -> None:
    from engine.sandbox.gate import GateError, check_code

    with pytest.raises(CandidateFailure) as loop:
        static_checks(_Seen(), pyast.Source.parse(code))  # type: ignore[arg-type]
    with pytest.raises(GateError) as gate:
        check_code(code)
    assert loop.value.reason == gate.value.reason == pyast.Source.parse(code).error
    assert loop.value.status is Status.INVALID and "\n" not in loop.value.reason


def test_a_syntax_error_names_line_column_and_message() -> None:
    assert pyast.Source.parse("x = 1\ndef f(x:\n    return x\n").error == \
        "syntax error at line 2, column 6: '(' was never closed"
