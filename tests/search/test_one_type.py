"""One Usage and one Proposal from the LLM layer up to the files on disk: archives and journal
entries written before the types were merged load unchanged and are written back in the same
shape; a malformed usage is still refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.llm.usage import Usage
from engine.search.archive import Archive, Record
from engine.search.candidate import Proposal
from engine.search.journal import CandidateState

OLD_RECORD = {  # an archive line as the previous version wrote it (usage a pydantic model of its own)
    "id": "g1-0-0123abcd", "code_id": "0123abcd0123abcd", "name": "Square", "thought": "t",
    "code": "def f(x):\n    return x * x\n", "generation": 1, "index": 0, "parents": ["init-0-aaaaaaaa"],
    "status": "ok", "fitness": 0.5, "fitness_text": "0.5", "fitness_detail": {"agent_llm": {"calls": 2}},
    "error": None, "usage": {"calls": 1, "prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.001},
    "agent_usage": {"calls": 2, "prompt_tokens": 20, "completion_tokens": 7, "cost_usd": 0.0},
    "timings": {"propose": 0.1}, "attempts": [{"code_id": "0123abcd0123abcd", "name": "Square", "status": "ok",
                                                "error": None, "seconds": 0.2}], "cached": False,
}


def test_an_archive_of_the_previous_version_loads_and_is_written_back_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "archive.jsonl"
    path.write_text(json.dumps(OLD_RECORD) + "\n")
    record = Archive(path).records[0]
    assert record.usage == Usage(1, 10, 5, 0.001) and record.agent_usage.total_tokens == 27
    assert json.loads(record.model_dump_json()) == OLD_RECORD


def test_a_usage_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError):
        Record.model_validate({**OLD_RECORD, "usage": {**OLD_RECORD["usage"], "dollars": 1}})
    with pytest.raises(ValidationError):
        Usage.from_json({"calls": 1, "tokens": 3})


def test_a_journal_entry_keeps_its_proposal_shape() -> None:
    raw = {"generation": 1, "index": 0, "proposal": {"name": "n", "thought": "t", "code": "c"}}
    state = CandidateState.model_validate(raw)
    assert state.proposal == Proposal("n", "t", "c")
    assert state.model_dump(mode="json")["proposal"] == raw["proposal"]
    with pytest.raises(ValidationError):
        CandidateState.model_validate({**raw, "proposal": {**raw["proposal"], "extra": 1}})


def test_usage_arithmetic_and_its_json() -> None:
    total = Usage(1, 10, 5, 0.5) + Usage(2, 1, 1, 0.25)
    assert total == Usage(3, 11, 6, 0.75) and total - Usage(2, 1, 1, 0.25) == Usage(1, 10, 5, 0.5)
    assert Usage.from_json(total.to_json()) == total
