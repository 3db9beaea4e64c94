"""From raw evaluation numbers to one fitness: for each beta, the median over seeds of
reward - kl_coef * KL; the best over beta. Every raw number is kept in the detail.

Lives in the engine, never in a container: the evaluator only reports rewards and KLs.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from engine.domains.discopop.dpbox.protocol import run_key


class MissingScores(Exception):
    """The evaluator returned no usable score for some run."""


def _objective(score: dict[str, Any], kl_coef: float) -> float:
    if "score" in score:  # judge setting: the judge's mean grade is the objective
        return float(score["score"])
    if "reward" not in score or "kl" not in score:
        raise MissingScores("the evaluator reported neither a judge score nor reward and KL")
    return float(score["reward"]) - kl_coef * float(score["kl"])


def summarise(scores: dict[str, Any], betas: list[float], seeds: list[int], kl_coef: float) -> tuple[float, str, dict[str, Any]]:
    """Returns (fitness, text for the meta LLM, detail for the archive)."""
    per_beta: dict[str, Any] = {}
    for beta in betas:
        runs = {}
        for seed in seeds:
            score = scores.get(run_key(beta, seed))
            if not isinstance(score, dict) or "error" in score:
                why = score.get("error") if isinstance(score, dict) else "missing"
                raise MissingScores(f"the policy trained with beta={beta:g} seed={seed} could not be evaluated: {why}")
            objective = _objective(score, kl_coef)
            if not math.isfinite(objective):
                raise MissingScores(f"non-finite evaluation for beta={beta:g} seed={seed}")
            runs[str(seed)] = {**score, "objective": objective}
        per_beta[f"{beta:g}"] = {
            "objective_median": statistics.median(r["objective"] for r in runs.values()),
            **{f"{name}_median": statistics.median(r[name] for r in runs.values())
               for name in ("reward", "kl", "score") if all(name in r for r in runs.values())},
            "runs": runs,
        }
    best_beta = max(per_beta, key=lambda b: per_beta[b]["objective_median"])
    best = per_beta[best_beta]
    fitness = best["objective_median"]
    detail = {"kl_coef": kl_coef, "best_beta": float(best_beta), "per_beta": per_beta,
              "reference": scores.get("reference")}
    return fitness, _text(fitness, best_beta, best, per_beta, kl_coef, len(seeds)), detail


def _text(fitness: float, best_beta: str, best: dict[str, Any], per_beta: dict[str, Any], kl_coef: float, n_seeds: int) -> str:
    sweep = ", ".join(f"beta {b}: {v['objective_median']:.3f}" for b, v in per_beta.items())
    if "reward_median" in best:
        head = (f"reward - {kl_coef:g}*KL = {fitness:.3f} at beta {best_beta} (reward {best['reward_median']:.3f}, "
                f"KL {best['kl_median']:.2f}; median of {n_seeds} seeds)")
    else:
        head = f"judge score {fitness:.2f} at beta {best_beta} (median of {n_seeds} seeds)"
    return f"{head}; by beta: {sweep}"
