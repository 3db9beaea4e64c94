"""The job description the engine hands a container, as plain JSON (no pickle, no code).

Why a dataclass and not pydantic: this module runs inside images that only carry the ML stack;
the engine validates its own config with pydantic and serialises the relevant part here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


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

    kind: str  # "proxy": tiny model from the reference artifact; "hf": a from_pretrained directory
    path: str
    pairs_path: str  # jsonl with prompt/chosen/rejected


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
