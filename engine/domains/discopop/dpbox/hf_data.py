"""Turn a preference dataset (local file or directory) into the jsonl files the containers read.

Runs in the task image (`python -m dpbox.hf_data '<json>'`) with the dataset mounted read-only
at /data: train pairs -> /out/train/pairs.jsonl (prompt/chosen/rejected, plain strings or chat
message lists as the dataset has them; train/ is the candidate's /in); the eval split's prompts
-> /out/eval/eval_prompts.jsonl (eval/ is mounted only into the evaluation container).
"""

from __future__ import annotations

from . import env  # noqa: F401  (must precede the HF imports)

import json
import sys
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

COLUMNS = ("prompt", "chosen", "rejected")
SUFFIXES = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def load(source: Path, split: str) -> Dataset:
    if source.is_file():
        return load_dataset(SUFFIXES[source.suffix], data_files=str(source), split="train")
    if (source / "dataset_dict.json").exists() or (source / "dataset_info.json").exists():
        loaded = load_from_disk(str(source))
        return loaded[split] if isinstance(loaded, DatasetDict) else loaded
    return load_dataset(str(source), split=split)


def rows(dataset: Dataset, columns: tuple[str, ...], limit: int | None = None):
    present = [c for c in columns if c in dataset.column_names]
    for index, row in enumerate(dataset):
        if limit is not None and index >= limit:
            break
        yield {c: row[c] for c in present}


TRAIN_DIR, EVAL_DIR = "train", "eval"


def main(request: dict) -> None:
    source, out = Path(request["source"]), Path(request["out_dir"])
    (out / TRAIN_DIR).mkdir()
    (out / EVAL_DIR).mkdir()
    train = load(source, request["split"])
    missing = [c for c in ("chosen", "rejected") if c not in train.column_names]
    if missing:
        raise SystemExit(f"dataset has no column(s) {missing}; needs prompt/chosen/rejected")
    with (out / TRAIN_DIR / "pairs.jsonl").open("w") as handle:
        for row in rows(train, COLUMNS, request.get("max_pairs")):
            handle.write(json.dumps(row) + "\n")
    try:
        evaluation = load(source, request["eval_split"])
    except (ValueError, KeyError):
        evaluation = train  # no held-out split: prompts of the training set
    with (out / EVAL_DIR / "eval_prompts.jsonl").open("w") as handle:
        for row in rows(evaluation, ("prompt", "chosen"), request["eval_prompts"]):
            prompt = row.get("prompt")
            if prompt is None:  # implicit prompt: the chosen conversation without its last turn
                prompt = row["chosen"][:-1]
            handle.write(json.dumps({"prompt": prompt}) + "\n")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
