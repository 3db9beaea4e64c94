from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.search.archive import Archive, ArchiveCorrupt, Record, load_records
from engine.search.candidate import Status
from engine.search.codeid import code_id
from engine.search.prompting import archive_text, select


def _record(index: int, fitness: float | None = 1.0, code: str | None = None, generation: int = 1) -> Record:
    return Record(id=f"id{index}", name=f"n{index}", thought="t", code=code or f"def f(x):\n    return {index}\n",
                  generation=generation, index=index, status=Status.OK if fitness is not None else Status.FAILED,
                  fitness=fitness, fitness_text=None if fitness is None else f"fit {fitness}",
                  error=None if fitness is not None else "boom")


def test_code_id_ignores_layout_and_comments_but_not_behaviour() -> None:
    a = "def f(x):\n    return x+1\n"
    b = "# helper\ndef f( x ):   # the function\n\n        return (x + 1)\n"
    assert code_id(a) == code_id(b)
    assert code_id(a) != code_id("def f(x):\n    return x+2\n")
    assert code_id("def f(x:") == code_id("def   f( x :  # broken\n")  # unparsable code still normalises


def test_records_survive_reopen(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive.jsonl")
    archive.append(_record(0))
    archive.append(_record(1, fitness=None))
    reopened = Archive(tmp_path / "archive.jsonl")
    assert [r.model_dump() for r in reopened.records] == [r.model_dump() for r in archive.records]


def test_same_slot_cannot_be_archived_twice(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive.jsonl")
    archive.append(_record(0))
    with pytest.raises(ValueError, match="already archived"):
        archive.append(_record(0))


def test_torn_last_line_is_dropped_and_appends_stay_valid(tmp_path: Path) -> None:
    path = tmp_path / "archive.jsonl"
    Archive(path).append(_record(0))
    with open(path, "a") as handle:
        handle.write(_record(1).model_dump_json()[:40])  # SIGKILL in the middle of a write
    assert [r.index for r in load_records(tmp_path)] == [0]  # readers do not touch the file
    archive = Archive(path)
    assert [r.index for r in archive.records] == [0]
    archive.append(_record(1))
    assert [json.loads(line)["index"] for line in path.read_text().splitlines()] == [0, 1]


def test_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "archive.jsonl"
    path.write_text(_record(0).model_dump_json())
    archive = Archive(path)
    archive.append(_record(1))
    assert [r.index for r in Archive(path).records] == [0, 1]


def test_corrupt_middle_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "archive.jsonl"
    path.write_text(_record(0).model_dump_json() + "\n{garbage\n" + _record(1).model_dump_json() + "\n")
    with pytest.raises(ArchiveCorrupt, match=":2:"):
        Archive(path)


def test_prompt_archive_is_capped_keeping_best_and_most_recent() -> None:
    records = [_record(i, fitness=float(i % 7)) for i in range(40)] + [_record(99, fitness=None)]
    text = archive_text(records, cap_chars=1_500)
    assert len(text) <= 1_500
    shown = select(records, 1_500)
    names = [r.name for r in shown]
    assert "n39" in names  # most recent scored
    assert {"n6", "n13"} & set(names)  # the best (fitness 6)
    assert "n99" not in names  # failures are not shown as examples
    assert [r.index for r in shown] == sorted(r.index for r in shown)  # archive order
    entry = json.loads(text)[0]
    assert set(entry) == {"thought", "name", "code", "fitness"} and entry["fitness"].startswith("fit ")
