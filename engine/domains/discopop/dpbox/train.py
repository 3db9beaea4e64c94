"""Train one policy per (beta, seed) with TRL's DPOTrainer and the candidate's loss.

TRL 1.x removed the `dpo_loss` hook, so the trainer subclass overrides `compute_loss`: it
computes the policy's summed completion log-probs with TRL's fused LM head, reads the
precomputed reference log-probs from the batch, calls the candidate, and checks the result's
shape and finiteness at every step. A non-finite loss stops the run with a clear reason.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from datasets import Dataset
from trl import DPOConfig, DPOTrainer

from . import lm
from .candidate import LossFn
from .protocol import ModelKind, ModelSpec, TrainSpec, run_key

_NON_MODEL_KEYS = {"completion_mask", "ref_chosen_logps", "ref_rejected_logps"}


class NonFiniteLossError(Exception):
    """The candidate's loss produced NaN/inf during training."""


class LossShapeError(Exception):
    """The candidate's loss did not return one value per pair during training."""


class CandidateDPOTrainer(DPOTrainer):
    """DPOTrainer whose loss is the candidate's function of the four log-prob tensors."""

    def __init__(self, *args, candidate_loss: LossFn, **kwargs):
        super().__init__(*args, **kwargs)
        self.candidate_loss = candidate_loss
        self.step_margins: list[float] = []
        self.step_losses: list[float] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        completion_mask = inputs["completion_mask"]
        model_kwargs = {key: value for key, value in inputs.items() if key not in _NON_MODEL_KEYS}
        labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
        outputs = model(**model_kwargs, labels=labels, use_cache=False, fused_lm_head=True)
        seq_len = completion_mask.shape[1] - 1
        logps = outputs.log_probs[:, -seq_len:].sum(dim=1)  # masked positions are 0
        chosen, rejected = logps.chunk(2, dim=0)
        ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        losses = self.candidate_loss(chosen, rejected, ref_chosen, ref_rejected, self.beta)
        self._check(losses, chosen.shape[0])
        loss = losses.mean()
        with torch.no_grad():
            margin = ((chosen - ref_chosen) - (rejected - ref_rejected)).mean().item()
        self.step_margins.append(margin)
        self.step_losses.append(loss.item())
        return (loss, outputs) if return_outputs else loss

    def _check(self, losses: object, pairs: int) -> None:
        step = self.state.global_step
        if not isinstance(losses, torch.Tensor):
            raise LossShapeError(f"at training step {step} the loss returned {type(losses).__name__}, not a tensor")
        if tuple(losses.shape) != (pairs,):
            raise LossShapeError(f"at training step {step} the loss had shape {list(losses.shape)}, expected [{pairs}]")
        if not torch.isfinite(losses).all():
            bad = int((~torch.isfinite(losses)).sum())
            raise NonFiniteLossError(f"loss became non-finite at training step {step} ({bad} of {pairs} pairs, beta={self.beta:g})")


@dataclass
class RunRecord:
    """What one (beta, seed) training run reports back (plain numbers, no scores)."""

    key: str
    beta: float
    seed: int
    seconds: float
    steps: int
    final_loss: float
    final_margin: float
    margins: list[float] = field(default_factory=list)


def load_pairs(path: Path, limit: int | None) -> Dataset:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows]
    return Dataset.from_list(rows[:limit] if limit else rows)


class ModelSource:
    """Gives a fresh policy copy per run: the tiny proxy reference, or a from_pretrained dir."""

    def __init__(self, spec: ModelSpec, train: TrainSpec):
        self.spec = spec
        self.train = train
        if spec.kind is ModelKind.PROXY:
            self._reference, self.tokenizer = lm.load_reference(Path(spec.path))
        else:
            from transformers import AutoTokenizer

            self._reference = None
            self.tokenizer = AutoTokenizer.from_pretrained(spec.path)
            if self.tokenizer.pad_token is None:
                self.tokenizer.pad_token = self.tokenizer.eos_token

    def policy(self) -> torch.nn.Module:
        if self._reference is not None:
            return copy.deepcopy(self._reference)
        from transformers import AutoModelForCausalLM

        dtype = torch.bfloat16 if self.train.bf16 else torch.float32
        return AutoModelForCausalLM.from_pretrained(self.spec.path, dtype=dtype)

    def save(self, model: torch.nn.Module, out_dir: Path, key: str) -> None:
        if self._reference is not None:
            lm.save_weights(model, out_dir / f"{key}.safetensors")
        else:
            model.save_pretrained(out_dir / key, safe_serialization=True)
            self.tokenizer.save_pretrained(out_dir / key)


def dpo_config(train: TrainSpec, beta: float, seed: int, scratch: Path) -> DPOConfig:
    """CPU-safe defaults unless the spec asks otherwise: TRL defaults to bf16 and gradient
    checkpointing, both slow or unsupported on CPU."""
    return DPOConfig(
        output_dir=str(scratch / "trainer"),
        beta=beta,
        seed=seed,
        learning_rate=train.learning_rate,
        lr_scheduler_type=train.lr_scheduler,
        warmup_steps=train.warmup_ratio,
        per_device_train_batch_size=train.batch_size,
        gradient_accumulation_steps=train.grad_accum,
        num_train_epochs=train.epochs,
        use_cpu=train.use_cpu,
        bf16=train.bf16,
        gradient_checkpointing=train.gradient_checkpointing,
        precompute_ref_log_probs=True,
        max_length=train.max_length,
        save_strategy="no",
        report_to=[],
        logging_steps=10_000,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def train_all(job_train: TrainSpec, model_spec: ModelSpec, loss: LossFn, out_dir: Path, scratch: Path,
              on_record: Callable[[RunRecord], None]) -> None:
    """Every beta x seed, in one process so imports and the reference load are paid once."""
    source = ModelSource(model_spec, job_train)
    dataset = load_pairs(Path(model_spec.pairs_path), job_train.max_pairs)
    for beta in job_train.betas:
        for seed in job_train.seeds:
            key = run_key(beta, seed)
            started = time.perf_counter()
            trainer = CandidateDPOTrainer(
                model=source.policy(),
                args=dpo_config(job_train, beta, seed, scratch),
                train_dataset=dataset,
                processing_class=source.tokenizer,
                candidate_loss=loss,
            )
            trainer.train()
            if job_train.save_weights:
                source.save(trainer.model, out_dir, key)
            margins = trainer.step_margins
            on_record(
                RunRecord(
                    key=key,
                    beta=beta,
                    seed=seed,
                    seconds=round(time.perf_counter() - started, 3),
                    steps=trainer.state.global_step,
                    final_loss=trainer.step_losses[-1] if trainer.step_losses else math.nan,
                    final_margin=margins[-1] if margins else math.nan,
                    margins=[round(m, 4) for m in margins[:: max(1, len(margins) // 20)]],
                )
            )
            del trainer
