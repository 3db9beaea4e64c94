"""The in-process side of the container-vs-host comparison: the same dpbox training, run in a
plain Python process on the host (needs torch/transformers/trl: the `train` extra).

`python benchmarks/discopop/host_train.py <reference_dir> <job_json> <candidate_file> <out_dir>`
prints one JSON line: per-run training seconds and the total wall time after imports.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "engine" / "domains" / "discopop"))

from dpbox import env  # noqa: E402,F401
from dpbox import candidate, threads, train  # noqa: E402
from dpbox.protocol import CandidateJob  # noqa: E402


def main(reference: str, job_json: str, candidate_file: str, out: str) -> None:
    started = time.perf_counter()
    count = threads.configure_torch()
    job = CandidateJob.from_json(job_json)
    job.model.path = reference
    job.model.pairs_path = str(Path(reference) / "pairs.jsonl")
    records: list[dict] = []
    train.train_all(job.train, job.model, candidate.load(Path(candidate_file)), Path(out),
                    Path(tempfile.mkdtemp()), lambda r: records.append(asdict(r)))
    print(json.dumps({"threads": count, "train_s": sum(r["seconds"] for r in records),
                      "wall_s": time.perf_counter() - started, "runs": len(records)}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
