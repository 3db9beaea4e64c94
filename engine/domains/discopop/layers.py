"""Which files go into which image layer, and which part of a shared artifact into which container.

The candidate layer holds the loss loader, the validity tests and the trainer, plus the
candidate's code. The task layer holds the reference builder, the reward, the lexicon, the
samplers and the evaluators, and never any candidate code. The split is the point: the reward
function is not in a candidate's image, and the evaluator never imports a candidate.

Shared artifacts (built once in a task container, `artifacts.py`) have two parts:

| part     | proxy setting                                                | GPU settings        | mounted in                     |
| -------- | ------------------------------------------------------------ | ------------------- | ------------------------------ |
| `train/` | tokenizer (opaque token names), model size, reference, pairs | pairs.jsonl         | candidate container, at /in    |
| `eval/`  | word <-> token mapping, build metadata (spec, eval seed)     | eval_prompts.jsonl  | evaluation container only      |

so a candidate can train from what it gets but cannot rebuild the reward (which words are
wanted) or the evaluation prompts. Evaluation seeds reach the evaluator in its request only.
"""

from __future__ import annotations

from pathlib import Path

BOX_DIR = Path(__file__).with_name("dpbox")
CANDIDATE_FILE = "candidate_loss.py"  # same name as dpbox.candidate.CANDIDATE_FILE (that module imports torch)
SHARED = ("__init__.py", "env.py", "protocol.py", "threads.py", "lm.py")
CANDIDATE_ONLY = ("candidate.py", "test_validity.py", "train.py", "run_candidate.py")
TASK_ONLY = ("proxy_spec.py", "reward.py", "lexicon.py", "sampling.py", "reference.py", "evaluate.py", "hf_data.py",
             "hf_eval.py", "judge.py")
# Parts of an artifact directory: same names as TRAIN_DIR/EVAL_DIR in dpbox.reference and dpbox.hf_data.
ARTIFACT_TRAIN, ARTIFACT_EVAL = "train", "eval"


def _box(names: tuple[str, ...]) -> dict[str, bytes]:
    return {f"dpbox/{name}": (BOX_DIR / name).read_bytes() for name in names}


def candidate_files(code: str) -> dict[str, bytes]:
    return {**_box(SHARED + CANDIDATE_ONLY), CANDIDATE_FILE: code.encode()}


def task_files() -> dict[str, bytes]:
    return _box(SHARED + TASK_ONLY)


def candidate_inputs(artifact: Path) -> Path:
    """What a candidate container gets at /in: the artifact's training part only."""
    return artifact / ARTIFACT_TRAIN
