"""ADAS in real containers: whatever an agent leaves in /out is read by the one result reader
(a CandidateFailure, never an engine crash), and an outage of the agents' LLM is an
infrastructure failure, while errors an agent provokes itself are its own."""

from __future__ import annotations

import json
import re

import pytest

from engine.llm.probe import UpstreamOutage
from engine.llm.scripted import Reply
from engine.search.candidate import CandidateFailure, Status
from tests.adas.test_docker import harness, reply_by_fields  # noqa: F401 - the module's fixture

pytestmark = pytest.mark.docker

# Written in the evaluation only (the unit test has no gateway token), then the process ends
# before the harness can write its own answers.json.
HOSTILE_AGENT = '''import os

def forward(self, taskInfo):
    if os.environ.get("EVOBOX_LLM_TOKEN"):
        {write}
        os._exit(0)
    return LLMAgentBase(["answer"], "A")([taskInfo], "Go.")[0]
'''

# questions run on several threads: write whole files (temp + rename) so none is seen half-written
WRITE = 'tmp = "/out/t%d" % id(taskInfo); open(tmp, "w").write({text}); os.replace(tmp, "/out/answers.json")'

HOSTILE_OUT = {
    "nested_100k_deep": (WRITE.format(text='"[" * 100000 + "]" * 100000'), "nests deeper than"),
    "top_level_list": (WRITE.format(text='"[]"'), "is malformed at the top level"),
    "nan": (WRITE.format(text="""'{"answers": {"q": NaN}}'"""), "is not valid JSON"),
    # links and FIFOs never leave /out (the sandbox copies regular files only): missing here
    "symlink": ('os.symlink("/etc/passwd", "/out/answers.json")', "refused|missing"),
    "fifo": ('os.mkfifo("/out/answers.json")', "not a regular file|missing"),
    "directory": ('os.mkdir("/out/answers.json")', "not a regular file|Is a directory|missing"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_OUT))
def test_hostile_answers_file_is_the_agents_failure(harness, case):  # noqa: F811
    write, expected = HOSTILE_OUT[case]
    with pytest.raises(CandidateFailure) as failure:
        harness.evaluate(HOSTILE_AGENT.format(write=write))
    assert failure.value.status is Status.FAILED
    assert failure.value.reason.startswith("evaluation: ") and re.search(expected, failure.value.reason)


COT = '''def forward(self, taskInfo):
    return LLMAgentBase(['thinking', 'answer'], 'Chain-of-Thought Agent')([taskInfo], 'Think step by step.')[1]
'''


def test_an_upstream_outage_is_an_infrastructure_failure_not_all_zero_accuracy(harness):  # noqa: F811
    old = harness.llm.set_default(Reply("upstream down", status=503))
    try:
        with pytest.raises(UpstreamOutage, match="LLM upstream unreachable"):
            harness.evaluate(COT)
    finally:
        harness.llm.set_default(old)


def test_upstream_errors_an_agent_provokes_are_its_own(harness):  # noqa: F811
    """Every call of this agent breaks the upstream (500); the engine's own probe is answered:
    the agent is scored on what it produced, and nothing stops the run."""

    def break_on_marker(body: dict) -> str | Reply:
        if "BREAK-THE-UPSTREAM" in json.dumps(body):
            return Reply("the request broke me", status=500)
        return reply_by_fields(body) if len(body["messages"]) > 1 else "ok"

    old = harness.llm.set_default(break_on_marker)
    try:
        with pytest.raises(CandidateFailure) as failure:
            harness.evaluate(COT.replace("Think step by step.", "BREAK-THE-UPSTREAM"))
    finally:
        harness.llm.set_default(old)
    # scored on what it produced (all its answers failed), never taken for an outage of the run
    assert failure.value.status in (Status.FAILED, Status.TIMEOUT)
    assert "unreachable" not in failure.value.reason
