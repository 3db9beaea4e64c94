"""Meta prompts, following the paper's structure: domain, framework, output format with an
example, the archive, the task; two reflection prompts; a repair prompt showing the error.

Written to stay short: the default meta LLM is a 1.5B local model reading ~50 tokens/s.
"""

from __future__ import annotations

import json
from importlib import resources

from engine.domains.adas.baselines import COT
from engine.domains.adas.benchmarks import Benchmark
from engine.domains.adas.config import PromptStyle

SYSTEM = ("You are an expert in designing agents built from LLM calls. You write Python agents for a "
          "small framework. Reply with one well-formed JSON object and nothing else.")

DOMAINS: dict[Benchmark, str] = {
    Benchmark.MGSM: "Grade-school math word problems in several languages (MGSM). The agent gets one "
                    "problem and must answer with the final number.",
    Benchmark.DROP: "Reading comprehension with discrete reasoning (DROP): a passage and a question that may "
                    "need counting, sorting or arithmetic. Answers are short spans or numbers, scored by token F1.",
    Benchmark.MMLU: "Multiple-choice questions from 57 subjects (MMLU). The agent answers with the letter of "
                    "the right option.",
    Benchmark.GPQA: "Graduate-level multiple-choice science questions (GPQA). The agent answers with the letter "
                    "of the right option.",
    Benchmark.ARC: "Abstract grid puzzles (ARC): from a few input/output grid pairs, infer the rule and give the "
                   "output grid for the test input. An agent may ask an LLM for a field 'code' defining "
                   "transform(grid), check it with self.run_examples_and_get_feedback(code), and get the answer "
                   "with self.get_test_output_from_code(code).",
}

RULES = """# Rules
- An agent call returns a list of Info in the order of its output_fields: `thinking, answer = agent([taskInfo], instruction)`.
- Pass Info objects in input_infos (not strings); read a value with `.content`.
- Return the final answer as an Info or a string, never a list.
- Use only the framework, the standard library, numpy and scipy; no files, network or processes."""

WRONG_EXAMPLES = """# Common mistakes
Wrong: `answer = agent([taskInfo], instruction)` then `return answer` (a list, not an Info).
Right: `thinking, answer = agent([taskInfo], instruction)` then `return answer`.
Wrong: `agent([taskInfo, answer.content], ...)` (a string in input_infos is skipped silently).
Right: `agent([taskInfo, answer], ...)`.
Wrong: `if correct == 'True'` (an Info never equals a string). Right: `if correct.content == 'True'`."""

TASK = """# Your task
Propose a new agent that should score higher than the agents in the archive. Study them, draw on
ideas from related work, and try something meaningfully different rather than a small tweak.
Reply with the JSON object only."""

REFLECTION_1 = """Review your proposal:
1. Is it interesting and different from the archive? If not, propose another design.
2. Check the code line by line for mistakes (unpacking, Info vs string, return value).
3. How could it be simpler or better?
Reply with a JSON object with keys "reflection" (your review), "thought", "name" and "code" (the improved agent)."""

REFLECTION_2 = """Check the code once more against the framework and the rules, and fix any remaining mistake.
Reply with the JSON object with keys "reflection", "thought", "name" and "code"."""

REPAIR = """Running your agent failed:
{error}
Find the cause and fix it. Reply with a JSON object with keys "debug_thought" (what went wrong and how you fix it), "thought", "name" and "code" (the corrected forward function)."""


def framework_source() -> str:
    """The in-container framework, shown verbatim so the meta LLM codes against the real thing."""
    return resources.files("engine.domains.adas.box").joinpath("framework.py").read_text(encoding="utf-8")


def example_reply() -> str:
    return json.dumps({"thought": "Reason step by step before answering.", "name": "Chain-of-Thought",
                       "code": COT}, indent=1)


def proposal_prompt(benchmark: Benchmark, style: PromptStyle, archive_text: str) -> str:
    sections = [
        f"# Domain\n{DOMAINS[benchmark]}",
        "# Framework\nAgents run inside this framework; its names (Info, LLMAgentBase) need no import.\n"
        f"```python\n{framework_source()}```",
        '# Output format\nOne JSON object with keys "thought" (the idea and how it works), "name" (short) and '
        '"code" (the complete `def forward(self, taskInfo):` function). Example:\n' + example_reply(),
        RULES,
    ]
    if style is PromptStyle.FULL:
        sections.append(WRONG_EXAMPLES)
    sections += [f"# Archive (earlier agents with their validation fitness)\n{archive_text}", TASK]
    return "\n\n".join(sections)


def repair_prompt(error: str) -> str:
    return REPAIR.format(error=error)
