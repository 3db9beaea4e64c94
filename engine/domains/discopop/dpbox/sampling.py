"""Ancestral sampling and exact per-token KL for the proxy model. Task image only.

Completions are exactly `completion_length` words: special tokens (pad, unk, bos, eos) are
never sampled, for the policy and the reference alike, and both distributions are
renormalised over words. Why: preference tuning often moves mass onto end-of-sequence (the
"likelihood displacement" of DPO-style losses); with a fixed length that mass would count
against reward through truncation rather than through the words, which is what the reward
measures. Why a hand loop instead of `generate`: sequences are ~15 tokens, a full forward per
step is cheap, and one explicit generator makes every sample reproducible from a seed.
"""

from __future__ import annotations

import torch


def word_log_probs(logits: torch.Tensor, banned: list[int]) -> torch.Tensor:
    """Log-probabilities over words only (banned token ids get -inf before normalising)."""
    logits = logits.float().clone()
    logits[..., banned] = float("-inf")
    return torch.log_softmax(logits, dim=-1)


@torch.no_grad()
def sample(model: torch.nn.Module, prompt_ids: torch.Tensor, new_tokens: int, generator: torch.Generator,
           banned: list[int]) -> torch.Tensor:
    """Sample `new_tokens` words after each prompt row (all prompts have the same length)."""
    sequences = prompt_ids
    for _ in range(new_tokens):
        log_probs = word_log_probs(model(input_ids=sequences).logits[:, -1, :], banned)
        next_token = torch.multinomial(log_probs.exp(), 1, generator=generator)
        sequences = torch.cat([sequences, next_token], dim=1)
    return sequences[:, prompt_ids.shape[1] :]


@torch.no_grad()
def sequence_kl(policy: torch.nn.Module, reference: torch.nn.Module, prompt_ids: torch.Tensor,
                completion_ids: torch.Tensor, banned: list[int]) -> torch.Tensor:
    """Sum over completion positions of KL(policy || reference) of the next-word distributions.

    Exact at each position (full vocabulary), along the policy's own samples: an unbiased
    estimate of the sequence-level KL with far less variance than sampled log-ratios.
    """
    sequences = torch.cat([prompt_ids, completion_ids], dim=1)
    start, stop = prompt_ids.shape[1] - 1, sequences.shape[1] - 1
    policy_logp = word_log_probs(policy(input_ids=sequences).logits[:, start:stop], banned)
    reference_logp = word_log_probs(reference(input_ids=sequences).logits[:, start:stop], banned)
    terms = torch.where(policy_logp.isinf(), torch.zeros_like(policy_logp), policy_logp.exp() * (policy_logp - reference_logp))
    return terms.sum(dim=-1).sum(dim=1)
