"""Agents written the way agents for the ADAS paper's framework are written: the baselines its
prompts show (CoT, CoT-SC, Self-Refine, LLM Debate, Step-back, Quality-Diversity, Role
Assignment; ARC's code-writing agents with its two tools) and the patterns of its published
archives (confidence fields read with float(), votes kept only when a verifier says 'True',
ratings read with int(), numpy in ARC). Our own code, one agent per file, named
<benchmark>_<style>.py: the code a user brings, to be run unchanged.
"""

from __future__ import annotations

from pathlib import Path

from engine.domains.adas.benchmarks import Benchmark

HERE = Path(__file__).parent


def paper_agents() -> dict[str, str]:
    """Agent name -> code, for every agent file here."""
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(HERE.glob("*_*.py"))
            if not path.name.startswith("_")}


def benchmark_of(name: str) -> Benchmark:
    return Benchmark(name.split("_", 1)[0])
