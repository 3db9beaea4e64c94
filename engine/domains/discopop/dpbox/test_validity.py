"""Validity tests run inside the candidate's container before any training.

Each assertion message is one line: it becomes the reason the repair prompt shows the LLM.
A loss is NOT rejected for the direction of its gradient at margin 0 (DiscoPOP's own
log-ratio modulated loss points the wrong way there at small beta); only gross defects are:
wrong shape, non-finite values or gradients, no gradient path, or a reversed preference.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from dpbox import candidate

BETAS = [float(b) for b in os.environ.get("EVOBOX_VALIDITY_BETAS", "0.1").split(",")]
BATCH_SIZES = [1, 3, 16, 64]


@pytest.fixture(scope="session")
def loss():
    path = Path(os.environ.get("EVOBOX_CANDIDATE", f"/opt/evobox/{candidate.CANDIDATE_FILE}"))
    return candidate.load(path)


def make_inputs(margins: torch.Tensor, base: float = -40.0, seed: int = 0):
    """Four log-prob tensors whose implied log-ratio margin (policy vs reference, chosen minus
    rejected) equals `margins`; policy tensors require grad like in training."""
    generator = torch.Generator().manual_seed(seed)
    size = margins.shape[0]
    ref_chosen = base + torch.randn(size, generator=generator)
    ref_rejected = base + torch.randn(size, generator=generator)
    policy_rejected = ref_rejected + torch.randn(size, generator=generator)
    policy_chosen = ref_chosen + (policy_rejected - ref_rejected) + margins
    return (
        policy_chosen.clone().requires_grad_(True),
        policy_rejected.clone().requires_grad_(True),
        ref_chosen,
        ref_rejected,
    )


def call(loss, inputs, beta):
    try:
        out = loss(*inputs, beta)
    except Exception as error:  # the candidate's own exception is the reason shown to the LLM
        pytest.fail(f"the loss raised {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}", pytrace=False)
    if not isinstance(out, torch.Tensor):
        pytest.fail(f"the loss returned {type(out).__name__}, expected a torch.Tensor of shape [batch]", pytrace=False)
    return out


@pytest.mark.parametrize("size", BATCH_SIZES)
def test_one_loss_per_pair(loss, size):
    out = call(loss, make_inputs(torch.randn(size) * 3), BETAS[0])
    assert tuple(out.shape) == (size,), f"expected one loss per pair, shape [{size}], got {list(out.shape)} (do not reduce with mean/sum)"


@pytest.mark.parametrize("beta", BETAS)
def test_finite_at_ordinary_margins(loss, beta):
    out = call(loss, make_inputs(torch.linspace(-5, 5, 32)), beta)
    assert torch.isfinite(out).all(), f"non-finite loss at ordinary margins (beta={beta}, margins in [-5, 5])"


@pytest.mark.parametrize("beta", BETAS)
def test_finite_at_extreme_margins(loss, beta):
    scaled = torch.tensor([-40.0, -10.0, 10.0, 40.0])  # beta * margin
    out = call(loss, make_inputs(scaled / beta), beta)
    assert torch.isfinite(out).all(), f"non-finite loss at extreme margins (beta*margin in [-40, 40], beta={beta}); guard exp/log"


def test_finite_at_very_negative_logps(loss):
    out = call(loss, make_inputs(torch.linspace(-3, 3, 8), base=-3000.0), BETAS[0])
    assert torch.isfinite(out).all(), "non-finite loss for long sequences (log-probs around -3000); do not exponentiate raw log-probs"


@pytest.mark.parametrize("beta", BETAS)
def test_differentiable_with_finite_gradients(loss, beta):
    for margins in (torch.linspace(-3, 3, 16), torch.tensor([-40.0, -10.0, 10.0, 40.0]) / beta):
        inputs = make_inputs(margins)
        out = call(loss, inputs, beta)
        assert out.requires_grad, "the loss does not depend on the policy log-probs (no gradient path); avoid .detach()/.item()"
        out.mean().backward()
        for name, tensor in zip(("policy_chosen_logps", "policy_rejected_logps"), inputs[:2]):
            assert tensor.grad is None or torch.isfinite(tensor.grad).all(), f"non-finite gradient for {name} (beta={beta})"
        assert any(t.grad is not None for t in inputs[:2]), "no gradient reaches the policy log-probs"


@pytest.mark.parametrize("beta", BETAS)
def test_prefers_the_chosen_response(loss, beta):
    positive = call(loss, make_inputs(torch.full((8,), 5.0 / beta)), beta).mean().item()
    negative = call(loss, make_inputs(torch.full((8,), -5.0 / beta)), beta).mean().item()
    assert positive < negative, (
        f"loss at a large positive margin ({positive:.4g}) is not below the loss at a large negative one "
        f"({negative:.4g}) at beta={beta}: the sign is flipped or the loss ignores the margin"
    )
