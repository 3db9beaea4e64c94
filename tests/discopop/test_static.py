"""Host-side pieces: the static check, fitness, plots, config, prompts, image-layer split."""

from __future__ import annotations

import pytest

from engine.domains.discopop import baselines, fitness, layers, plots, prompts
from engine.domains.discopop.config import DiscoPopConfig, Limits, Setting
from engine.domains.discopop.static import check_loss_code
from engine.search.candidate import CandidateFailure, Status

PLAIN = '''import torch
def my_margin_loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta):
    rho = (policy_chosen_logps - reference_chosen_logps) - (policy_rejected_logps - reference_rejected_logps)
    return -F.logsigmoid(beta * rho)
'''


def reason(code: str) -> str:
    with pytest.raises(CandidateFailure) as caught:
        check_loss_code(code)
    assert caught.value.status is Status.INVALID
    return caught.value.reason


@pytest.mark.parametrize("code", [baselines.DPO, baselines.HINGE, baselines.IPO, baselines.KTO_PAIR, baselines.LRML, PLAIN])
def test_baselines_and_both_conventions_pass_the_static_check(code):
    check_loss_code(code)


def test_a_plain_function_with_keyword_only_beta_is_accepted():
    check_loss_code("def f(pc, pr, rc, rr, *, beta):\n    return pc - pr\n")


def test_two_functions_are_rejected():
    assert "exactly one top-level function, found 2" in reason(baselines.DPO + "\n" + baselines.IPO)


def test_a_top_level_constant_is_rejected():
    assert "only imports and the one function" in reason("TAU = 0.05\n" + baselines.DPO)


def test_a_function_without_beta_or_self_is_rejected():
    assert "beta" in reason("def f(a, b, c, d):\n    return a - b\n")


def test_a_method_with_three_tensors_is_rejected():
    assert "self and 4 log-prob tensors" in reason("def f(self, a, b, c):\n    return a\n")


def test_beta_before_the_tensors_is_rejected():
    assert "after the 4 log-prob tensors" in reason("def f(beta, a, b, c, d):\n    return a\n")


def test_star_args_are_rejected():
    assert "named parameters" in reason("def f(self, *tensors):\n    return tensors[0]\n")


def test_a_syntax_error_names_its_line():
    assert reason("def f(self, a, b, c, d):\n    return (a\n").startswith("syntax error at line")


def scores(values: dict[tuple[float, int], tuple[float, float]]) -> dict:
    return {f"beta{b:g}_seed{s}": {"reward": r, "kl": k} for (b, s), (r, k) in values.items()}


def test_fitness_is_the_best_beta_of_the_seed_medians():
    raw = scores({(0.1, 0): (0.9, 10.0), (0.1, 1): (0.8, 2.0), (0.1, 2): (0.7, 2.0),  # objectives .4 .7 .6 -> .6
                  (1.0, 0): (0.5, 0.0), (1.0, 1): (0.55, 0.0), (1.0, 2): (0.1, 0.0)})  # .5 .55 .1 -> .5
    value, text, detail = fitness.summarise(raw, [0.1, 1.0], [0, 1, 2], kl_coef=0.05)
    assert value == pytest.approx(0.6)
    assert detail["best_beta"] == 0.1
    assert detail["per_beta"]["1"]["objective_median"] == pytest.approx(0.5)
    assert detail["per_beta"]["0.1"]["runs"]["0"]["kl"] == 10.0  # raw numbers kept
    assert "beta 0.1" in text and "0.600" in text


def test_a_missing_run_is_not_scored():
    with pytest.raises(fitness.MissingScores):
        fitness.summarise(scores({(0.1, 0): (0.5, 1.0)}), [0.1], [0, 1], kl_coef=0.05)


def test_the_frontier_keeps_only_undominated_points():
    assert plots.frontier([(0.0, 0.3), (1.0, 0.2), (2.0, 0.6), (3.0, 0.5), (4.0, 0.7)]) == [(0.0, 0.3), (2.0, 0.6), (4.0, 0.7)]


def test_report_plots_are_written(tmp_path):
    _, _, detail = fitness.summarise(scores({(0.1, 0): (0.5, 1.0), (1.0, 0): (0.6, 3.0)}), [0.1, 1.0], [0], 0.05)
    archive = [{"name": "DPO", "status": "ok", "fitness_detail": detail}, {"name": "broken", "status": "failed"}]
    paths = plots.render(archive, tmp_path)
    assert [p.name for p in paths] == ["discopop_reward_vs_kl.png", "discopop_frontier.png"]
    assert all(p.stat().st_size > 5000 for p in paths)


def test_the_reward_and_evaluator_never_enter_a_candidate_image():
    candidate = layers.candidate_files(baselines.DPO)
    assert "candidate_loss.py" in candidate
    assert not {"dpbox/reward.py", "dpbox/evaluate.py", "dpbox/sampling.py", "dpbox/hf_eval.py"} & set(candidate)
    assert "candidate_loss.py" not in layers.task_files()
    assert "dpbox/run_candidate.py" not in layers.task_files()


def test_the_judge_setting_needs_questions():
    with pytest.raises(ValueError, match="judge_questions"):
        DiscoPopConfig(setting=Setting.JUDGE)


def test_gpu_leases_select_the_cuda_runtime():
    assert DiscoPopConfig().runtime_name == "discopop"
    assert DiscoPopConfig(train_limits=Limits(gpus=1)).runtime_name == "discopop-cuda"


def test_unknown_config_keys_are_errors():
    with pytest.raises(ValueError):
        DiscoPopConfig(betaz=[0.1])


def test_the_proposal_prompt_carries_the_archive_and_the_sweep():
    text = prompts.proposal(DiscoPopConfig(betas=[0.1, 0.5]), '[{"name": "DPO", "fitness": "0.5"}]')
    assert '"name": "DPO"' in text and "[0.1, 0.5]" in text and "def dpo_sigmoid_loss" in text
    assert "nan at step 3" in prompts.repair("nan at step 3")


@pytest.mark.parametrize("name", ["local", "imdb", "zephyr"])
def test_shipped_configs_validate(name):
    import tomllib
    from pathlib import Path

    from engine.config import build_config

    path = Path(__file__).resolve().parents[2] / "engine" / "domains" / "discopop" / "configs" / f"{name}.toml"
    config = build_config(tomllib.loads(path.read_text()))
    domain = config.domain_config(DiscoPopConfig)
    assert domain.runtime_name == ("discopop" if name == "local" else "discopop-cuda")


def test_baseline_cache_key_ignores_limits_but_not_the_setting():
    from engine.domains.discopop.domain import DiscoPopDomain

    base = DiscoPopDomain(DiscoPopConfig()).evaluation_key()
    assert DiscoPopDomain(DiscoPopConfig(train_limits=Limits(timeout_s=5000))).evaluation_key() == base
    assert DiscoPopDomain(DiscoPopConfig(kl_coef=0.1)).evaluation_key() != base
