"""The [domain] table of a DiscoPOP run.

One setting is chosen: the CPU proxy task (default, embedded), the paper's IMDb experiment
(GPT-2 policy, sentiment classifier reward, reward vs KL over a beta sweep) or its main
setting (a chat SFT model on a pairwise preference set, judged MT-Bench style by an LLM
through the gateway). Model and dataset ids are configuration: a local directory or file, or
a hub id resolved on the host into the cache before any container starts.
"""

from __future__ import annotations

import enum
from dataclasses import asdict

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.domains.discopop.dpbox.protocol import Setting
from engine.domains.discopop.dpbox.proxy_spec import ProxySpec
from engine.sandbox.limits import SandboxLimits, parse_size


class Scheduler(str, enum.Enum):
    LINEAR = "linear"
    COSINE = "cosine"
    CONSTANT = "constant"


class ProxyConfig(BaseModel):
    """The CPU proxy task; its JSON (hashed) keys the cached reference artifact."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="Seed of the reference's training text and of the preference pairs.")
    n_layer: int = Field(2, ge=1, description="Transformer layers of the tiny GPT-2.")
    n_embd: int = Field(64, ge=8, description="Hidden size of the tiny GPT-2.")
    n_head: int = Field(2, ge=1, description="Attention heads.")
    prompt_neutral_words: int = Field(2, ge=0, le=8, description="Random words after the prompt's tag.")
    completion_length: int = Field(12, ge=2, le=24, description="Words per completion.")
    neutral_fraction: float = Field(0.5, ge=0, lt=1, description="Share of neutral words in reference text.")
    reference_bias: float = Field(0.15, ge=0, lt=0.5, description="Extra probability of the wanted class in reference text.")
    sft_steps: int = Field(500, ge=1, description="Reference training steps.")
    sft_batch_size: int = Field(64, ge=1)
    sft_learning_rate: float = Field(3e-3, gt=0)
    n_pairs: int = Field(1024, ge=8, description="Preference pairs sampled from the reference.")
    samples_per_prompt: int = Field(4, ge=2, description="A pair is the best and worst of this many samples.")
    eval_prompts: int = Field(256, ge=2, description="Prompts sampled per trained policy at evaluation.")
    eval_seed: int = Field(1234, description="Seed of the evaluation prompts and sampling.")

    def spec(self) -> ProxySpec:
        return ProxySpec(**self.model_dump())


class TrainingConfig(BaseModel):
    """DPOTrainer settings shared by every candidate (the loss is the only thing that varies)."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(5e-4, gt=0)
    batch_size: int = Field(16, ge=1, description="Pairs per device step.")
    grad_accum: int = Field(1, ge=1)
    epochs: float = Field(1, gt=0)
    max_pairs: int | None = Field(None, ge=1, description="Use only the first N pairs.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    lr_scheduler: Scheduler = Scheduler.LINEAR
    bf16: bool = Field(False, description="GPU settings: bfloat16 weights and autocast.")
    gradient_checkpointing: bool = Field(False, description="GPU settings with big models.")
    max_length: int | None = Field(None, ge=8, description="Truncate prompt+completion to this many tokens.")


class HFConfig(BaseModel):
    """Models and data of the GPU settings (ignored by the proxy setting)."""

    model_config = ConfigDict(extra="forbid")

    policy_model: str = Field("lvwerra/gpt2-imdb", description="SFT policy = reference: local dir or hub id.")
    dataset: str = Field("ZHZisZZ/imdb_preference", description="Pairs (prompt/chosen/rejected): local jsonl/parquet/dir or hub id.")
    dataset_split: str = "train"
    eval_dataset_split: str = Field("test", description="Split whose prompts are used for evaluation.")
    reward_model: str | None = Field("siebert/sentiment-roberta-large-english", description="IMDb: sequence classifier; its positive-class probability is the reward.")
    reward_label: str = Field("POSITIVE", description="Label of the classifier whose probability is the reward.")
    judge_questions: str | None = Field(None, description="Judge setting: jsonl of {question} (MT-Bench style); local path.")
    eval_prompts: int = Field(64, ge=1, description="Prompts (or questions) generated from per trained policy.")
    max_new_tokens: int = Field(60, ge=1)
    eval_batch_size: int = Field(16, ge=1)
    eval_seed: int = 0
    judge_max_calls: int = Field(200, ge=1, description="Gateway budget of judge calls per candidate.")
    judge_max_tokens: int = Field(200_000, ge=1, description="Gateway token budget per candidate.")


class Limits(BaseModel):
    """Limits of one container; everything else comes from the run's [sandbox] table."""

    model_config = ConfigDict(extra="forbid")

    cpus: float = Field(1.0, gt=0, description="1 is fastest for the proxy on a 2-core host.")
    memory: int = Field(parse_size("3g"), description="RAM limit (e.g. '3g').")
    timeout_s: float = Field(900, gt=0)
    gpus: int = Field(0, ge=0, description="GPUs leased for this container (GPU settings).")
    out_max: int = Field(parse_size("256m"), description="Bytes the engine reads back from /out.")
    tmp: int = Field(parse_size("512m"), description="Size of /tmp (HF caches land there).")

    @field_validator("memory", "out_max", "tmp", mode="before")
    @classmethod
    def _sizes(cls, value: int | str) -> int:
        return parse_size(value)

    def sandbox(self, base: SandboxLimits) -> SandboxLimits:
        return base.model_copy(update={
            "cpus": self.cpus, "memory_bytes": self.memory, "timeout_s": self.timeout_s, "gpus": self.gpus,
            "out_max_bytes": self.out_max, "tmp_bytes": self.tmp, "shm_bytes": min(self.tmp, parse_size("256m")),
            "fsize_bytes": max(base.fsize_bytes, self.out_max), "pids": max(base.pids, 512),
        })


class DiscoPopConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    setting: Setting = Setting.PROXY
    betas: list[float] = Field([0.1, 0.3, 1.0], min_length=1, description="Beta sweep; fitness takes the best beta.")
    seeds: list[int] = Field([0, 1, 2], min_length=1, description="Training seeds; fitness takes the median over them.")
    kl_coef: float = Field(0.05, ge=0, description="Fitness = reward - kl_coef * KL(policy || reference).")
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    hf: HFConfig = Field(default_factory=HFConfig)
    train_limits: Limits = Field(default_factory=lambda: Limits(timeout_s=300),
                                 description="Candidate container; 300 s is ~5x a proxy candidate under load.")
    eval_limits: Limits = Field(default_factory=lambda: Limits(timeout_s=600, memory=parse_size("2g")))
    runtime: str | None = Field(None, description="Runtime image recipe; default discopop, or discopop-cuda when GPUs are leased.")

    @field_validator("betas")
    @classmethod
    def _positive(cls, betas: list[float]) -> list[float]:
        if any(beta <= 0 for beta in betas):
            raise ValueError("every beta must be > 0")
        return sorted(set(betas))

    @model_validator(mode="after")
    def _settings(self) -> "DiscoPopConfig":
        if self.setting is Setting.JUDGE and not self.hf.judge_questions:
            raise ValueError("setting 'judge' needs hf.judge_questions (a jsonl of questions)")
        if self.setting is Setting.IMDB and not self.hf.reward_model:
            raise ValueError("setting 'imdb' needs hf.reward_model")
        return self

    @property
    def runtime_name(self) -> str:
        if self.runtime:
            return self.runtime
        return "discopop-cuda" if self.train_limits.gpus or self.eval_limits.gpus else "discopop"

    def proxy_spec_json(self) -> dict:
        return asdict(self.proxy.spec())
