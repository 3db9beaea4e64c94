"""Report plots: reward vs KL per candidate and beta, and the archive's reward-KL frontier.

Reads only the archive records' fitness_detail (median over seeds per beta), so it works on
any finished or half-finished run. matplotlib's Agg backend: no display needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def points(record: Mapping[str, Any]) -> list[tuple[float, float, float]]:
    """(beta, KL median, reward median) for each beta of a scored record."""
    per_beta = (record.get("fitness_detail") or {}).get("per_beta") or {}
    return [(float(beta), v["kl_median"], v["reward_median"]) for beta, v in per_beta.items()
            if "kl_median" in v and "reward_median" in v]


def frontier(all_points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Upper-left Pareto frontier: no other point has lower KL and higher reward."""
    best: list[tuple[float, float]] = []
    for kl, reward in sorted(all_points):
        if not best or reward > best[-1][1]:
            best.append((kl, reward))
    return best


def render(archive: list[Mapping[str, Any]], out_dir: Path) -> list[Path]:
    scored = [r for r in archive if r.get("status") == "ok" and points(r)]
    if not scored:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    return [_per_candidate(scored, out_dir / "discopop_reward_vs_kl.png"), _frontier(scored, out_dir / "discopop_frontier.png")]


def _per_candidate(scored: list[Mapping[str, Any]], path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(8, 5.5))
    for record in scored:
        pts = sorted(points(record))
        line, = axes.plot([p[1] for p in pts], [p[2] for p in pts], marker="o", label=str(record.get("name", "?"))[:40])
        for beta, kl, reward in pts:
            axes.annotate(f"{beta:g}", (kl, reward), textcoords="offset points", xytext=(3, 3), fontsize=7, color=line.get_color())
    reference = _reference(scored)
    if reference is not None:
        axes.axhline(reference, color="grey", linestyle=":", label="reference policy")
    axes.set_xlabel("KL(policy || reference), nats per completion (median over seeds)")
    axes.set_ylabel("mean reward (median over seeds)")
    axes.set_title("Reward vs KL per candidate; points labelled by beta")
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _frontier(scored: list[Mapping[str, Any]], path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(8, 5.5))
    everything = [(kl, reward, str(r.get("name", "?"))) for r in scored for _, kl, reward in points(r)]
    axes.scatter([p[0] for p in everything], [p[1] for p in everything], s=14, color="#999999", label="candidate x beta")
    edge = frontier([(p[0], p[1]) for p in everything])
    axes.step([p[0] for p in edge], [p[1] for p in edge], where="post", color="C3", label="frontier")
    for kl, reward in edge:
        name = next(n for k, r, n in everything if k == kl and r == reward)
        axes.annotate(name[:28], (kl, reward), textcoords="offset points", xytext=(4, -10), fontsize=7)
    reference = _reference(scored)
    if reference is not None:
        axes.scatter([0.0], [reference], marker="*", s=120, color="black", label="reference policy")
    axes.set_xlabel("KL(policy || reference)")
    axes.set_ylabel("mean reward")
    axes.set_title("Archive frontier: best reward reachable at each KL")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _reference(scored: list[Mapping[str, Any]]) -> float | None:
    """The reference policy's reward (KL 0), when the evaluator reported it."""
    for record in scored:
        reference = (record.get("fitness_detail") or {}).get("reference") or {}
        if "reward" in reference:
            return float(reference["reward"])
    return None
