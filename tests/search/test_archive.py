from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.search.archive import Archive, ArchiveCorrupt, Record, load_records
from engine.search.candidate import Status
from engine.search.codeid import code_id, record_id
from engine.search.prompting import as_text, select


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


def test_unparsable_programs_that_differ_after_the_first_error_get_different_ids() -> None:
    bad_dedent = "def f():\n        return 1\n    x = 2\nprint({!r})\n"
    assert code_id(bad_dedent.format("A")) != code_id(bad_dedent.format("B"))
    unclosed = "def f(x:\n    return {}\n"
    assert code_id(unclosed.format(1)) != code_id(unclosed.format(2))


def test_record_ids_are_unique_per_record_even_without_code_or_with_the_same_code() -> None:
    same = "def f(x):\n    return x\n"
    ids = {record_id(1, 0, ""), record_id(1, 1, ""), record_id(2, 0, same), record_id(2, 1, same),
           record_id("initial", 0, same)}
    assert len(ids) == 5
    assert record_id(2, 0, same) == record_id(2, 0, "def f( x ):  # same\n    return x")  # stable on a rerun
    record = _record(0, code=same)
    assert record.code_id == code_id(same) and _record(1, code="   ").code_id is None


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
    text = as_text(select(records, cap_chars=1_500))
    assert len(text) <= 1_500
    shown = select(records, 1_500)
    names = [r.name for r in shown]
    assert "n39" in names  # most recent scored
    assert {"n6", "n13"} & set(names)  # the best (fitness 6)
    assert "n99" not in names  # failures are not shown as examples
    assert [r.index for r in shown] == sorted(r.index for r in shown)  # archive order
    entry = json.loads(text)[0]
    assert set(entry) == {"thought", "name", "code", "fitness"} and entry["fitness"].startswith("fit ")


SHORT_WRITE = """
import resource, signal, sys
from engine.search.archive import Archive
from tests.search.test_archive import _record
archive = Archive(__import__("pathlib").Path(sys.argv[1]))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
size = archive.path.stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 40, size + 40))  # room for part of the next line only
try:
    archive.append(_record(1))
except OSError as exc:
    print("refused", exc.errno, len(archive.records))
else:
    print("appended")
"""


def test_a_short_write_is_never_taken_for_an_archived_record(tmp_path: Path) -> None:
    """os.write may write part of a line (a file size limit, a full disk): the append fails
    and the archive keeps only whole records."""
    path = tmp_path / "archive.jsonl"
    Archive(path).append(_record(0))
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", SHORT_WRITE, str(path)], cwd=repo, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(repo)}, timeout=60)
    assert result.stdout.split() == ["refused", str(errno.EFBIG), "1"], result.stdout + result.stderr
    assert [r.index for r in Archive(path).records] == [0]
    assert path.read_bytes().endswith(b"\n") and path.read_bytes().count(b"\n") == 1
