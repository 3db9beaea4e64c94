"""Which files go into which image layer.

The candidate layer holds the loss loader, the validity tests and the trainer, plus the
candidate's code. The task layer holds the reference builder, the reward, the samplers and the
evaluators, and never any candidate code. The split is the point: the reward function is not
in a candidate's image, and the evaluator never imports a candidate.
"""

from __future__ import annotations

from pathlib import Path

BOX_DIR = Path(__file__).with_name("dpbox")
CANDIDATE_FILE = "candidate_loss.py"  # same name as dpbox.candidate.CANDIDATE_FILE (that module imports torch)
SHARED = ("__init__.py", "env.py", "job.py", "threads.py", "lm.py", "proxy_spec.py")
CANDIDATE_ONLY = ("candidate.py", "test_validity.py", "train.py", "run_candidate.py")
TASK_ONLY = ("reward.py", "sampling.py", "reference.py", "evaluate.py", "hf_data.py", "hf_eval.py", "judge.py")


def _box(names: tuple[str, ...]) -> dict[str, bytes]:
    return {f"dpbox/{name}": (BOX_DIR / name).read_bytes() for name in names}


def candidate_files(code: str) -> dict[str, bytes]:
    return {**_box(SHARED + CANDIDATE_ONLY), CANDIDATE_FILE: code.encode()}


def task_files() -> dict[str, bytes]:
    return _box(SHARED + TASK_ONLY)
