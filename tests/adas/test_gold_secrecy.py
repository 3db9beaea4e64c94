"""Nothing written to an agent's /in (or baked into its image) predicts the gold answer.

For each benchmark a small synthetic fixture goes through the real domain (prepare, tasks, the
candidate's /in as CandidateRun writes it). Multiple choice: every public shuffle recipe an
agent could replay from what it sees (the old `seed:key:repeat` seed, the task id, the new
recipe with a guessed key) recovers the correct letter at chance rate only. Free-form answers:
the gold never appears in /in. No GPQA item is involved: the GPQA fixture is synthetic.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from engine.domains.adas.benchmarks.loaders import LETTERS
from engine.domains.adas.benchmarks.registry import Benchmark, Split, option_order_key
from engine.domains.adas.config import AdasConfig
from engine.domains.adas.domain import AdasDomain
from engine.domains.adas.evaluation import box_files
from engine.domains.adas.evaluation import CandidateRun
from engine.llm.config import LLMConfig
from engine.search.domain import CandidateContext, RunContext
from engine.task_secret import SECRET_FILE, TaskSecret

AGENT = "def forward(self, taskInfo):\n    return 'A'\n"


class _Images:
    """prepare() only asks for the runtime image's tag; nothing is built or run here."""

    def runtime(self, name: str) -> str:
        return f"evobox-test/{name}"


def _gpqa(root: Path) -> str:
    path = root / "gpqa.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["Question", "Correct Answer", "Incorrect Answer 1",
                                         "Incorrect Answer 2", "Incorrect Answer 3"])
        writer.writeheader()
        for i in range(200):
            writer.writerow({"Question": f"synthetic question {i}", "Correct Answer": f"right {i}",
                             "Incorrect Answer 1": f"wrong a{i}", "Incorrect Answer 2": f"wrong b{i}",
                             "Incorrect Answer 3": f"wrong c{i}"})
    return str(path)


def _mmlu(root: Path) -> str:
    rng = random.Random(7)
    path = root / "mmlu.jsonl"
    path.write_text("".join(json.dumps({"question": f"q{i}", **{f"answer_{c}": f"{c}{i}" for c in "abcd"},
                                        "correct_answer": rng.choice(LETTERS)}) + "\n" for i in range(1000)))
    return str(path)


def _mgsm(root: Path) -> str:
    (root / "mgsm_en.tsv").write_text("".join(f"Item {i}: how many apples?\t{90000 + i}\n" for i in range(200)))
    return str(root)


def _drop(root: Path) -> str:
    path = root / "drop.jsonl"
    path.write_text("".join(json.dumps({"context": f"Passage: story {i}.\nQuestion: who?\nAnswer:",
                                        "completion": f" gold-{i}", "ref_text": f"gold-{i}|zeta-{i}"}) + "\n"
                            for i in range(200)))
    return str(path)


def _arc(root: Path) -> str:
    folder = root / "arc" / "training"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(30):
        pair = {"input": [[1, 2], [2, 1]], "output": [[3, 3], [3, 3]]}
        test = {"input": [[4, i % 4], [4, 4]], "output": [[7, 8], [8, i % 7]]}
        (folder / f"task{i:03d}.json").write_text(json.dumps({"train": [pair, pair], "test": [test]}))
    return str(root / "arc")


FIXTURES: dict[Benchmark, Callable[[Path], str]] = {
    Benchmark.GPQA: _gpqa, Benchmark.MMLU: _mmlu, Benchmark.MGSM: _mgsm, Benchmark.DROP: _drop, Benchmark.ARC: _arc}


def _prepared(benchmark: Benchmark, tmp_path: Path, split: Split = Split.VALID) -> tuple[AdasDomain, RunContext]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = FIXTURES[benchmark](tmp_path)
    domain = AdasDomain(AdasConfig(benchmark=benchmark, split=split, source=source, n_questions=0))
    run = RunContext(run_id="gold-secrecy", run_dir=tmp_path / "run", cache_dir=tmp_path / "cache",
                     sandbox=None, images=_Images(), gateway=None, llm=LLMConfig())  # type: ignore[arg-type]
    domain.prepare(run)
    return domain, run


def _agent_inputs(domain: AdasDomain, run: RunContext, tmp_path: Path, split: Split) -> dict[str, bytes]:
    """Every file of the agent's /in as CandidateRun writes it, and of its image's candidate layer."""
    directory = tmp_path / f"candidate-{split.value}"
    directory.mkdir()
    ctx = CandidateContext(run=run, candidate_id="c", candidate_dir=directory, stage=lambda _: None,
                           log=structlog.get_logger())
    in_dir = CandidateRun(domain.config, ctx, "runtime", AGENT)._write_inputs(domain.tasks())
    files = {f"/in/{p.name}": p.read_bytes() for p in in_dir.iterdir()}
    files.update({f"/opt/evobox/{name}": data for name, data in box_files(AGENT).items()})
    return files


def _recipes(task_id: str) -> Iterator[tuple[str, str]]:
    """(recipe, predicted letter): where the stored-first correct option lands under each
    shuffle an agent could replay from public values."""
    key, _, repeat_text = task_id.partition("#")
    repeat = int(repeat_text or 0)
    seeds: dict[str, object] = {f"seed{s}:key:repeat": f"{s}:{key}:{repeat}" for s in range(4)}
    seeds.update({"task id": task_id, "key": key, "key:repeat": f"{key}:{repeat}",
                  "hmac, empty key": option_order_key(b"", 0, key, repeat),
                  "hmac, zero key": option_order_key(bytes(32), 0, key, repeat)})
    for name, seed in seeds.items():
        order = list(range(4))
        random.Random(seed).shuffle(order)  # type: ignore[arg-type]
        yield name, LETTERS[order.index(0)]
    yield "stored order", "A"


@pytest.mark.parametrize("benchmark", [Benchmark.GPQA, Benchmark.MMLU])
def test_no_public_shuffle_recipe_recovers_the_correct_option(benchmark, tmp_path):
    hits: dict[str, int] = {}
    n = 0
    for split in Split:
        domain, run = _prepared(benchmark, tmp_path, split)
        gold = {t.id: t.gold for t in domain.tasks()}
        seen = json.loads(_agent_inputs(domain, run, tmp_path, split)["/in/questions.json"])
        for question in seen:
            n += 1
            for recipe, letter in _recipes(question["id"]):
                hits[recipe] = hits.get(recipe, 0) + (letter == gold[question["id"]])
    bound = 0.25 + 4 * math.sqrt(0.25 * 0.75 / n)  # chance plus four standard deviations
    assert n >= 900
    assert {recipe: count / n for recipe, count in hits.items() if count / n > bound} == {}


@pytest.mark.parametrize("benchmark", list(FIXTURES))
def test_the_gold_answer_never_enters_the_agents_in_or_image(benchmark, tmp_path):
    domain, run = _prepared(benchmark, tmp_path)
    files = _agent_inputs(domain, run, tmp_path, Split.VALID)
    blob = b"\n".join(files.values())
    secret = TaskSecret.load(tmp_path / "cache")
    assert secret.key not in blob and secret.key.hex().encode() not in blob
    assert not any(SECRET_FILE in name for name in files)
    for task in domain.tasks():
        public = task.public()
        assert set(public) == {"id", "question", "inputs"}
        if benchmark in (Benchmark.GPQA, Benchmark.MMLU):
            continue  # a letter: covered by the recipe test above
        golds = task.gold.split("|") if benchmark is Benchmark.DROP else [task.gold]
        for gold in golds:
            spellings = ({json.dumps(gold), json.dumps(gold, separators=(",", ":"))} if benchmark is Benchmark.ARC
                         else {str(int(gold))} if benchmark is Benchmark.MGSM else {gold})
            assert not any(spelling.encode() in blob for spelling in spellings), task.id


def test_the_option_order_is_stable_for_one_secret_and_changes_with_another(tmp_path):
    first, _ = _prepared(Benchmark.GPQA, tmp_path / "a")
    again = AdasDomain(first.config)
    again.prepare(RunContext(run_id="resume", run_dir=tmp_path / "a" / "run", cache_dir=tmp_path / "a" / "cache",
                             sandbox=None, images=_Images(), gateway=None, llm=LLMConfig()))  # type: ignore[arg-type]
    other, _ = _prepared(Benchmark.GPQA, tmp_path / "b")
    golds = [t.gold for t in first.tasks()]
    assert golds == [t.gold for t in again.tasks()]  # a resumed run asks the same questions
    assert golds != [t.gold for t in other.tasks()]  # another machine's secret, another order
    assert first.evaluation_key() == again.evaluation_key() != other.evaluation_key()  # cached scores follow


def test_the_secret_file_is_private_and_created_once(tmp_path):
    secret = TaskSecret.load(tmp_path)
    assert TaskSecret.load(tmp_path) == secret
    assert (tmp_path / SECRET_FILE).stat().st_mode & 0o077 == 0
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]  # no temp file left behind
