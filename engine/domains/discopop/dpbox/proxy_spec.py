"""Settings of the CPU proxy task (reference training, pairs, evaluation sampling).

Plain dataclass shared by the task image and the engine's pydantic config, which serialises
it; its JSON is also hashed to key the cached reference artifact.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ProxySpec:
    seed: int = 0
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 2
    prompt_neutral_words: int = 2  # words after the tag, so prompts differ
    completion_length: int = 12
    neutral_fraction: float = 0.5  # reference text: this share neutral, the rest warm/cold
    reference_bias: float = 0.15  # extra probability of the prompt's wanted class in reference text
    sft_steps: int = 500
    sft_batch_size: int = 64
    sft_learning_rate: float = 3e-3
    n_pairs: int = 1024
    samples_per_prompt: int = 4  # pair = best vs worst of this many reference samples
    eval_prompts: int = 256
    eval_seed: int = 1234
