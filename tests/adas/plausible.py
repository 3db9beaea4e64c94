"""Tiny synthetic versions of the five benchmarks, and a scripted LLM that replies to any agent
the way a capable LLM would: the right answer, a number for a confidence, 'True' for a verdict,
an expert for a routing choice, a correct `transform` (written with numpy) for ARC's code.

The items are made up here (never real GPQA items). Every question's right answer is the same
per benchmark, so one reply rule serves them all.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from engine.domains.adas.benchmarks import Benchmark

RIGHT = "the right one"
DROP_GOLD = "Eagles"
MGSM_GOLD = "42"
FLIP_CODE = "import numpy as np\n\n\ndef transform(grid):\n    return np.fliplr(np.array(grid)).tolist()\n"
_OPTION = re.compile(r"\(([ABCD])\) (.*)")


def write_datasets(root: Path) -> dict[Benchmark, str]:
    """The `source` of each synthetic benchmark under `root` (two questions each)."""
    root.mkdir(parents=True, exist_ok=True)
    mgsm = root / "mgsm"
    mgsm.mkdir(exist_ok=True)
    (mgsm / "mgsm_en.tsv").write_text("Tom has 40 apples and buys 2 more. How many apples does he have?\t42\n"
                                      "What is 6 times 7?\t42\n", encoding="utf-8")
    drop = root / "drop.jsonl"
    passage = "Passage: The Eagles beat the Giants 21-7 in {year}.\nQuestion: Who won the game?\nAnswer:"
    drop.write_text("".join(json.dumps({"context": passage.format(year=year), "completion": DROP_GOLD,
                                        "ref_text": DROP_GOLD}) + "\n" for year in (1990, 1991, 1992, 1993)))
    mmlu = root / "mmlu.jsonl"
    mmlu.write_text("".join(json.dumps({"question": f"Which option is right? ({i})", "answer_a": "a wrong one",
                                        "answer_b": RIGHT, "answer_c": "another wrong one",
                                        "answer_d": "not this one", "correct_answer": "B"}) + "\n" for i in range(2)))
    gpqa = root / "gpqa.csv"
    with gpqa.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
                         "Incorrect Answer 3"])
        for i in range(2):
            writer.writerow([f"Made-up science question {i}: which option is right?", RIGHT, "a wrong one",
                             "another wrong one", "not this one"])
    arc = root / "arc"
    arc.mkdir(exist_ok=True)
    for name, rows in (("flip1", [[1, 2, 3], [4, 5, 6]]), ("flip2", [[7, 0], [0, 8]])):
        pairs = [{"input": grid, "output": [row[::-1] for row in grid]} for grid in (rows, rows[::-1], [[1, 0]])]
        (arc / f"{name}.json").write_text(json.dumps({"train": pairs[1:], "test": pairs[:1]}))
    return {Benchmark.MGSM: str(mgsm), Benchmark.DROP: str(drop), Benchmark.MMLU: str(mmlu),
            Benchmark.GPQA: str(gpqa), Benchmark.ARC: str(arc)}


def requested_fields(body: dict[str, Any]) -> list[str]:
    """The output fields LLMAgentBase asked for, read from its system prompt."""
    system = body["messages"][0]["content"]
    return list(json.loads(system.split("keys:\n", 1)[1].split("\nDo not add", 1)[0]))


def right_answer(prompt: str) -> str:
    if "Passage:" in prompt:
        return DROP_GOLD
    options = {letter: text.strip() for letter, text in _OPTION.findall(prompt)}
    right = [letter for letter, text in options.items() if text == RIGHT]
    return right[0] if right else MGSM_GOLD


def plausible_value(name: str, prompt: str) -> Any:
    """What a capable LLM would put in this field."""
    if "answer" in name:
        return right_answer(prompt)
    if "code" in name:
        return FLIP_CODE
    if "confidence" in name:
        return 0.9
    if "score" in name:
        return "9"
    if "correct" in name:
        return "True"
    if "choice" in name:
        return "Physics Expert"
    return f"Some {name}."


def plausible_reply(body: dict[str, Any]) -> str:
    prompt = body["messages"][-1]["content"]
    return json.dumps({name: plausible_value(name, prompt) for name in requested_fields(body)})
