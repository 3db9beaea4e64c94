"""Meta prompts for loss discovery: role and format, the task with the archive, two
reflection rounds, and a repair prompt that shows the error.

Kept short on purpose: the default meta LLM is a 1.5B local model reading ~50 prompt tokens
per second, and every reflection round re-reads the conversation.
"""

from __future__ import annotations

from engine.domains.discopop.baselines import DPO
from engine.domains.discopop.config import DiscoPopConfig, Setting

SYSTEM = (
    "You are a machine learning researcher who designs loss functions for aligning language models "
    "with human preferences (offline preference optimisation, like DPO). You write short, numerically "
    "careful PyTorch code. Reply with one JSON object with the keys \"thought\", \"name\" and \"code\", "
    "and nothing else."
)

SETTINGS = {
    Setting.PROXY: (
        "a small GPT-2 is fine-tuned on preference pairs whose prompts ask for a kind of word; it is then "
        "sampled, and scored by the exact reward of its samples minus {kl_coef} times its KL divergence from "
        "the reference model"
    ),
    Setting.IMDB: (
        "GPT-2 is fine-tuned on movie-review preference pairs; its generations are scored by a sentiment "
        "classifier (reward) minus {kl_coef} times their KL divergence from the reference model"
    ),
    Setting.JUDGE: (
        "a chat model is fine-tuned on preference pairs; its answers to held-out questions are graded 1-10 by "
        "an LLM judge (MT-Bench style)"
    ),
}

TASK = """# Task
Write a new offline preference-optimisation loss. For a batch of preference pairs you get four
tensors of shape [batch]: the summed log-probabilities of the chosen and of the rejected response
under the policy being trained (policy_chosen_logps, policy_rejected_logps) and under the frozen
reference model (reference_chosen_logps, reference_rejected_logps). Return one loss per pair
(shape [batch]); the trainer averages it. A common quantity is the log-ratio margin
rho = (policy_chosen_logps - reference_chosen_logps) - (policy_rejected_logps - reference_rejected_logps),
and beta (self.beta) sets how far the policy may move from the reference.

Here is DPO in the expected form (torch and torch.nn.functional as F are available):
```python
{example}```

# Evaluation
Each loss is trained with beta in {betas} and seeds {seeds}: {setting}. The fitness is the best over beta of
the median over seeds; higher is better. Before training, the loss must pass tests: shape [batch] for several
batch sizes, finite values and gradients for ordinary and extreme margins (beta*rho from -40 to 40, log-probs
near -3000), and a lower loss for a large positive margin than for a large negative one.

# Rules
- Define exactly one function; keep constants and helpers inside it. No classes, no globals.
- Take `self` first and read self.beta, as above (or take `beta` as the last parameter).
- Use only torch, torch.nn.functional (F) and math. Keep it numerically stable (logsigmoid, clamp).

# Archive (earlier losses with their fitness)
{archive}

Propose a loss that should beat the archive: study what worked, think about the shape of the loss as a
function of rho, and try something meaningfully new rather than a renamed copy or a wrapper around
DPO. Directions worth trying: blend two losses with a weight that depends on rho; a target margin
or a margin that adapts to the batch; bounded or smoothly clipped losses; weighting pairs by how
sure the reference already is; treating chosen and rejected log-ratios separately. Reply with the JSON object:
"thought" (your reasoning), "name" (a short name), "code" (the Python function)."""

REFLECTION_1 = """Review your proposal before it is run:
1. Is it really different from the losses in the archive, and why would it score higher?
2. Check the code: one function, shape [batch] returned (no mean or sum over the batch), no NaN or inf for
   large margins (avoid exp of large values, log of values that can reach 0), loss lower when rho is large.
3. Could it be simpler?
Reply with a JSON object with keys "reflection", "thought", "name" and "code" (the improved loss)."""

REFLECTION_2 = """Read the code once more as the tests will run it and fix any remaining mistake.
Reply with the JSON object with keys "reflection", "thought", "name" and "code"."""

REPAIR = """Your loss failed: {error}
Fix the code so that it passes (keep the idea if you can). Reply with the JSON object with keys
"thought", "name" and "code"."""


def proposal(config: DiscoPopConfig, archive_text: str) -> str:
    setting = SETTINGS[config.setting].format(kl_coef=config.kl_coef)
    return TASK.format(example=DPO, betas=config.betas, seeds=config.seeds, setting=setting, archive=archive_text)


def repair(error: str) -> str:
    return REPAIR.format(error=error)
