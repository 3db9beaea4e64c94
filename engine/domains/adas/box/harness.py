"""Entry point inside the candidate's container: `python -m adas_box.harness selftest|evaluate`.

Reads /in/config.json and /in/questions.json (questions only, never gold answers) and the
agent's code from agent.py beside this package; writes /out/selftest.json or /out/answers.json.
The engine scores the answers outside the container.
"""
from __future__ import annotations

import argparse
import copy
import inspect
import json
import os
import random
import sys
import threading
import time
import traceback
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from adas_box import backend
from adas_box.framework import AgentSystem, Info, LLMAgentBase, random_id
from adas_box.stub import Shape

AGENT_FILE = "agent.py"
MAX_ANSWER_CHARS = 20_000


class AgentLoadError(Exception):
    """The agent's code does not define a usable forward function."""


def _agent_line(exc: BaseException) -> int | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == AGENT_FILE]
    return frames[-1].lineno if frames else None


def one_line(exc: BaseException) -> str:
    """'TypeError: ... (agent.py line 12)': what the repair prompt shows."""
    line = _agent_line(exc)
    where = f" (agent.py line {line})" if line else ""
    message = " ".join(str(exc).split())[:300]
    if isinstance(exc, SyntaxError) and exc.filename == AGENT_FILE:
        message, where = exc.msg, f" (agent.py line {exc.lineno})"
    return f"{type(exc).__name__}: {message}{where}"


class LazyNumpy(types.ModuleType):
    """`np` for agents that use it without importing it, imported at its first use: most agents
    never touch it, and importing numpy costs each container ~0.15 s of CPU (0.5 s on a loaded
    machine). The import statement is thread-safe; after the first, it is a lookup."""

    def __getattr__(self, name: str) -> Any:
        import numpy  # noqa: PLC0415  (in the runtime image)

        return getattr(numpy, name)


def paper_globals() -> dict[str, Any]:
    """What the paper's search.py had in scope when it exec'd an agent, so code that used these
    names without importing them runs unchanged."""
    return {"Info": Info, "LLMAgentBase": LLMAgentBase, "AgentSystem": AgentSystem, "random_id": random_id,
            "random": random, "json": json, "copy": copy, "np": LazyNumpy("numpy"),
            "ThreadPoolExecutor": ThreadPoolExecutor, "list_to_string": backend.grid_text}


def load_forward(source: str) -> Callable[[Any, Info], Any]:
    """Run the agent's code with the framework's names in scope; take its forward function.

    A single top-level function under another name is accepted as forward.
    """
    namespace: dict[str, Any] = {"__name__": "agent", **paper_globals()}
    try:
        exec(compile(source, AGENT_FILE, "exec"), namespace)
    except Exception as exc:
        raise AgentLoadError(one_line(exc)) from exc
    functions = {name: value for name, value in namespace.items()
                 if inspect.isfunction(value) and value.__code__.co_filename == AGENT_FILE}
    forward = functions.get("forward") or (next(iter(functions.values())) if len(functions) == 1 else None)
    if forward is None:
        raise AgentLoadError(f"define one function forward(self, taskInfo); found {sorted(functions) or 'none'}")
    if len(inspect.signature(forward).parameters) != 2:
        raise AgentLoadError(f"{forward.__name__} must take exactly (self, taskInfo)")
    return forward


def solve(forward: Callable[[Any, Info], Any], question: dict[str, Any]) -> Any:
    """Call forward on one question, as a method of a fresh AgentSystem."""
    inputs = question.get("inputs") or {}
    system = AgentSystem(inputs.get("examples"), inputs.get("test_input"))
    task_info = Info("task", "User", question["question"], -1)
    return forward(system, task_info)


def to_answer(result: Any) -> Any:
    """The JSON value sent back to the engine: Info content, strings, grids; others as text."""
    if isinstance(result, Info):
        result = result.content
    if result is None:
        return ""
    if isinstance(result, str):
        return result[:MAX_ANSWER_CHARS]
    if isinstance(result, list):
        text = json.dumps(result, default=str)
        return result if len(text) <= MAX_ANSWER_CHARS else text[:MAX_ANSWER_CHARS]
    return str(result)[:MAX_ANSWER_CHARS]


def _tool_error(answer: Any) -> str | None:
    """ARC: an answer that is get_test_output_from_code's error text is reported as the error."""
    error = backend.tool_error()
    return f"get_test_output_from_code: {error}"[:300] if error and answer == error else None


class Run:
    """Answers questions on `threads` worker threads with a per-question timeout.

    A timed-out question frees its slot at once; its thread stops at its next LLM call and is
    killed with the process at the end (threads cannot be killed earlier).
    """

    def __init__(self, forward: Callable[[Any, Info], Any], threads: int, timeout_s: float, deadline_s: float):
        self.forward, self.threads, self.timeout_s = forward, threads, timeout_s
        self.deadline = time.monotonic() + deadline_s
        self.results: dict[str, dict[str, Any]] = {}
        self.running: dict[str, float] = {}
        self.cond = threading.Condition()

    def _worker(self, question: dict[str, Any]) -> None:
        started = time.monotonic()
        backend.start_question(question["id"], started + self.timeout_s)
        try:
            answer = to_answer(solve(self.forward, question))
            result = {"answer": answer, "error": _tool_error(answer)}
        except BaseException as exc:  # a crash on one question is an empty answer for it
            result = {"answer": "", "error": one_line(exc)}
        result["seconds"] = round(time.monotonic() - started, 3)
        with self.cond:
            self.results.setdefault(question["id"], result)
            self.running.pop(question["id"], None)
            self.cond.notify_all()

    def _expire(self, now: float) -> None:
        for qid, started in list(self.running.items()):
            if now - started > self.timeout_s:
                self.results.setdefault(qid, {"answer": "", "error": f"timed out after {self.timeout_s:g}s",
                                              "seconds": round(now - started, 3)})
                del self.running[qid]

    def answer_all(self, questions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        pending = list(questions)
        with self.cond:
            while pending or self.running:
                now = time.monotonic()
                self._expire(now)
                if now > self.deadline:
                    for question in pending:
                        self.results[question["id"]] = {"answer": "", "error": "not started: evaluation deadline",
                                                        "seconds": 0.0}
                    for qid in list(self.running):
                        self.results.setdefault(qid, {"answer": "", "error": "stopped: evaluation deadline",
                                                      "seconds": round(now - self.running[qid], 3)})
                    break
                while pending and len(self.running) < self.threads:
                    question = pending.pop(0)
                    self.running[question["id"]] = now
                    threading.Thread(target=self._worker, args=(question,), daemon=True).start()
                self.cond.wait(timeout=0.2)
        return dict(self.results)


@dataclass(frozen=True)
class SampleFailure:
    """Why forward failed one sample task. `cause` is what must repeat for the agent to fail:
    for a crash its type and the agent's line (the message may quote the stub's values, which
    differ between the two tries by design); otherwise the reason itself."""

    reason: str
    cause: tuple[str, int | None] | str


def _sample(forward: Callable[[Any, Info], Any], question: dict[str, Any], number: int, timeout_s: float,
            arc: bool) -> SampleFailure | None:
    """forward on one sample task against the stub LLM: None, or why it failed."""
    box: dict[str, Any] = {}

    def target() -> None:
        backend.start_question(question["id"], time.monotonic() + timeout_s)
        try:
            box["result"] = solve(forward, question)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return _failed(f"forward did not finish within {timeout_s:g}s on sample task {number} (stub LLM)")
    if "error" in box:
        exc = box["error"]
        return SampleFailure(f"forward crashed on sample task {number}: {one_line(exc)}",
                             (type(exc).__name__, _agent_line(exc)))
    result = box["result"]
    allowed = (Info, str, int, float, list) if arc else (Info, str, int, float)
    if not isinstance(result, allowed) or isinstance(result, bool):
        return _failed(f"forward must return an Info or a string, got {type(result).__name__}")
    if isinstance(result, Info) and not isinstance(result.content, (str, int, float, list)):
        return _failed(f"forward returned an Info whose content is a {type(result.content).__name__}")
    if to_answer(result) in ("", []):
        return _failed(f"forward returned an empty answer on sample task {number}")
    return None


def _failed(reason: str) -> SampleFailure:
    return SampleFailure(reason, reason)


def selftest(forward: Callable[[Any, Info], Any], questions: list[dict[str, Any]], timeout_s: float,
             arc: bool) -> str | None:
    """Run forward on sample questions against the stub LLM. Returns None, or the failure reason.

    A sample that fails with the TYPICAL stub replies is run again with the OTHER ones (numbers
    as JSON numbers, another option, the opposite verdict...). The agent fails only if it fails
    the same way again (same exception at the same line of agent.py): a failure that changes
    with the replies is caused by them, and the evaluation will use a real LLM's replies.
    """
    for number, question in enumerate(questions, start=1):
        backend.use_stub(Shape.TYPICAL)
        first = _sample(forward, question, number, timeout_s, arc)
        if first is None:
            continue
        backend.use_stub(Shape.OTHER)
        second = _sample(forward, question, number, timeout_s, arc)
        if second is not None and second.cause == first.cause:
            return first.reason
        print(f"selftest: sample task {number} failed with typical stub replies ({first.reason}) but not the same "
              f"way with other replies ({second.reason if second else 'passed'}): left to the evaluation", flush=True)
    if backend.stub_calls == 0:
        return "forward never called an LLMAgentBase agent"
    return None


RELEASE_POLL_S = 0.02


def released(release_file: str | None) -> bool:
    """Wait for the engine's verdict on the unit test (run meanwhile in another container):
    True at `go`, False at `stop`. The container's time limit ends a wait that gets neither.
    No release file configured: go at once."""
    if release_file is None:
        return True
    path = Path(release_file)
    while True:
        try:
            verdict = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            time.sleep(RELEASE_POLL_S)
            continue
        return verdict == "go"


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["selftest", "evaluate"])
    parser.add_argument("--in-dir", default="/in")
    parser.add_argument("--out-dir", default="/out")
    parser.add_argument("--agent", default=str(Path(__file__).resolve().parent.parent / AGENT_FILE))
    args = parser.parse_args(argv)
    in_dir, out_dir = Path(args.in_dir), Path(args.out_dir)
    config = json.loads((in_dir / "config.json").read_text(encoding="utf-8"))
    questions = json.loads((in_dir / "questions.json").read_text(encoding="utf-8"))
    selftesting = args.mode == "selftest"
    backend.configure(backend.Settings(answer_hint=config["answer_hint"], benchmark=config["benchmark"],
                                       stub_shape=Shape.TYPICAL if selftesting else None,
                                       max_tokens=config["max_tokens"]))
    if not selftesting:
        backend.warm_up()  # our own client's imports, while the unit test runs
        if not released(config.get("release_file")):
            os._exit(0)  # the unit test failed: the agent's code is never loaded here
    try:
        forward = load_forward(Path(args.agent).read_text(encoding="utf-8"))
    except AgentLoadError as exc:
        forward, load_error = None, str(exc)
    else:
        load_error = None
    if selftesting:
        reason = load_error or selftest(forward, questions[:config["selftest_questions"]],
                                        config["selftest_timeout_s"], backend.settings.arc)
        _write_json(out_dir / "selftest.json", {"ok": reason is None, "reason": reason, "calls": backend.stub_calls})
    elif load_error:
        _write_json(out_dir / "answers.json", {"load_error": load_error, "answers": {}})
    else:
        run = Run(forward, config["threads"], config["question_timeout_s"], config["deadline_s"])
        _write_json(out_dir / "answers.json", {"load_error": None, "answers": run.answer_all(questions)})
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # ends threads of timed-out questions, which cannot be stopped otherwise


if __name__ == "__main__":
    main()
