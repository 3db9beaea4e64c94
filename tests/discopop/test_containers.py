"""DiscoPOP candidates in real containers: validity tests, both conventions, NaN stop, and the
sanity ordering of losses on the CPU proxy task."""

from __future__ import annotations

import pytest

from engine.domains.discopop import baselines
from engine.search.candidate import Status
from tests.discopop.conftest import evaluate, failure

pytestmark = [pytest.mark.docker]

HEAD = "def loss(self, policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps):\n"
RHO = "    rho = (policy_chosen_logps - reference_chosen_logps) - (policy_rejected_logps - reference_rejected_logps)\n"

BROKEN = {
    "reduces_to_a_scalar": (RHO + "    return -F.logsigmoid(self.beta * rho).mean()\n", "expected one loss per pair"),
    "nan_at_ordinary_margins": (RHO + "    return torch.sqrt(self.beta * rho)\n", "non-finite loss at ordinary margins"),
    "overflows_at_extreme_margins": (RHO + "    return torch.exp(-3 * self.beta * rho)\n", "non-finite loss at extreme margins"),
    "has_no_gradient_path": (RHO + "    return -F.logsigmoid(self.beta * rho).detach()\n", "no gradient path"),
    "has_a_flipped_sign": (RHO + "    return -F.logsigmoid(-self.beta * rho)\n", "sign is flipped"),
    "raises": (RHO + "    return rho.reshape(3, -1)\n", "the loss raised RuntimeError"),
    "returns_a_float": (RHO + "    return 1.0\n", "returned float"),
}

PLAIN_DPO = '''def anything(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta):
    rho = (policy_chosen_logps - reference_chosen_logps) - (policy_rejected_logps - reference_rejected_logps)
    return -F.logsigmoid(beta * rho)
'''

NAN_IN_TRAINING = HEAD + RHO + '''    loss = -F.logsigmoid(self.beta * rho)
    if policy_chosen_logps.grad_fn is not None:  # only inside the trainer, never in the validity tests
        loss = loss * float("nan")
    return loss
'''


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_validity_tests_reject_each_kind_of_broken_loss(fast_domain, dp_run, kind):
    body, expected = BROKEN[kind]
    caught = failure(fast_domain, dp_run, HEAD + body)
    assert caught.status is Status.FAILED
    assert caught.reason.startswith("validity test ")
    assert expected in caught.reason
    assert "\n" not in caught.reason


@pytest.mark.slow
def test_a_loss_pointing_the_wrong_way_at_margin_zero_is_not_rejected(fast_domain, dp_run):
    """DiscoPOP's LRML has its gradient at rho=0 pushing the margin down at small beta."""
    result = evaluate(fast_domain, dp_run, baselines.LRML)
    assert result.detail["per_beta"]["1"]["runs"]["0"]["kl"] >= 0


@pytest.mark.slow
def test_both_conventions_give_the_same_trained_policy(fast_domain, dp_run):
    method = evaluate(fast_domain, dp_run, baselines.DPO)
    plain = evaluate(fast_domain, dp_run, PLAIN_DPO)
    assert method.fitness == pytest.approx(plain.fitness, abs=1e-9)
    assert method.detail["timings"]["threads"] == 1  # from the container's 1-CPU quota


def test_a_nan_during_training_stops_the_run_with_a_clear_reason(fast_domain, dp_run):
    caught = failure(fast_domain, dp_run, NAN_IN_TRAINING)
    assert caught.status is Status.FAILED
    assert caught.reason.startswith("loss became non-finite at training step 0")


@pytest.mark.slow
def test_dpo_hinge_and_ipo_beat_zero_and_flipped_losses_by_a_wide_margin(prepared, dp_run):
    domain = prepared(betas=[0.1, 1.0], seeds=[0])
    good = {name: evaluate(domain, dp_run, code).fitness
            for name, code in (("dpo", baselines.DPO), ("hinge", baselines.HINGE), ("ipo", baselines.IPO))}
    bad = {name: evaluate(domain, dp_run, code, validate=False).fitness
           for name, code in (("zero", baselines.ZERO), ("flipped", baselines.FLIPPED_DPO))}
    worst_good, best_bad = min(good.values()), max(bad.values())
    assert worst_good > best_bad + 0.1, (good, bad)
    assert bad["flipped"] < bad["zero"] - 0.1, bad  # a flipped loss drives reward down, not just nowhere


NAN_GRADIENT_IN_TRAINING = HEAD + RHO + '''    loss = -F.logsigmoid(self.beta * rho)
    if policy_chosen_logps.grad_fn is not None:  # a finite loss whose gradient is NaN, only in training
        loss = torch.where(rho < -1e6, torch.sqrt(rho), loss)
    return loss
'''


@pytest.mark.slow
def test_a_policy_ruined_on_the_last_step_fails_the_candidate_not_the_run(prepared, dp_run):
    """One training step: the loss stays finite, the weights become NaN, sampling them fails in
    the evaluation container; that is the candidate's failure, with the reason."""
    domain = prepared(betas=[1.0], seeds=[0], training={"max_pairs": 16, "batch_size": 16})
    caught = failure(domain, dp_run, NAN_GRADIENT_IN_TRAINING)
    assert caught.status is Status.FAILED
    assert "could not be evaluated" in caught.reason and "beta=1 seed=0" in caught.reason
