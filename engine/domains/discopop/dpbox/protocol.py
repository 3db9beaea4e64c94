"""Everything that crosses the boundary of a DiscoPOP container, typed: the job the engine hands
the candidate container, the status its result file reports, the model kinds and settings the
evaluator is asked for. As plain JSON (no pickle, no code).

One module on both sides: it is copied into every DiscoPOP image layer (layers.SHARED) and the
engine imports the same file, so a value can only be spelled one way. Why stdlib dataclasses and
enums and not pydantic: this module runs inside images that only carry the ML stack; the engine
validates its own config with pydantic and serialises the relevant part here.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any


class BoxStatus(str, enum.Enum):
    """`status` of the candidate container's /out/result.json (dpbox.run_candidate).

    Not the engine's candidate `Status`: a box that REJECTED the loss ran it (its validity
    tests failed), which the engine records as a FAILED candidate, never as INVALID (a
    candidate that never ran)."""

    RUNNING = "running"  # written first: left as is, the trainer was killed
    OK = "ok"
    REJECTED = "rejected"  # a validity test failed
    FAILED = "failed"  # training raised or diverged


class ModelKind(str, enum.Enum):
    """Where the policy comes from, in the candidate job and the evaluation request."""

    PROXY = "proxy"  # the tiny model of the proxy task's reference artifact
    HF = "hf"  # a from_pretrained directory (GPU settings)


class Setting(str, enum.Enum):
    """The DiscoPOP setting of a run; the evaluation request names it (reward model or judge)."""

    PROXY = "proxy"  # tiny GPT-2, exact lexicon reward, CPU
    IMDB = "imdb"  # HF causal LM policy, classifier reward model, reward vs KL
    JUDGE = "judge"  # HF chat model, answers judged 1-10 by an LLM through the gateway


@dataclass
class TrainSpec:
    """How one candidate is trained: the sweep (betas x seeds) and the optimiser settings."""

    betas: list[float]
    seeds: list[int]
    learning_rate: float = 1e-3
    batch_size: int = 32
    epochs: float = 1
    max_pairs: int | None = None
    warmup_ratio: float = 0.0
    lr_scheduler: str = "linear"
    bf16: bool = False
    gradient_checkpointing: bool = False
    max_length: int | None = None
    max_prompt_length: int | None = None
    grad_accum: int = 1
    use_cpu: bool = True
    save_weights: bool = True  # proxy: small weights go to /out; big models only when asked


@dataclass
class ModelSpec:
    """Where the policy/reference weights live inside the container (a mounted directory)."""

    kind: ModelKind
    path: str
    pairs_path: str  # jsonl with prompt/chosen/rejected

    def __post_init__(self) -> None:
        self.kind = ModelKind(self.kind)  # from JSON it arrives as its value


@dataclass
class CandidateJob:
    """Everything the candidate container needs: what to validate, then what to train."""

    train: TrainSpec
    model: ModelSpec
    validate: bool = True
    validity_betas: list[float] = field(default_factory=lambda: [0.1])

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "CandidateJob":
        raw: dict[str, Any] = json.loads(text)
        return cls(
            train=TrainSpec(**raw["train"]),
            model=ModelSpec(**raw["model"]),
            validate=raw.get("validate", True),
            validity_betas=raw.get("validity_betas", [0.1]),
        )


def run_key(beta: float, seed: int) -> str:
    """File-name-safe key of one training run, shared by trainer, evaluator and engine."""
    return f"beta{beta:g}_seed{seed}"
