"""The in-container framework and harness, run as a subprocess against a scripted LLM."""

import json

import pytest

from engine.domains.adas.baselines import COT
from engine.llm.scripted import ScriptedLLM
from tests.adas.boxenv import run_harness

QUESTIONS = [{"id": f"q{i}", "question": f"What is {i} + {i}?", "inputs": {}} for i in range(3)]

# Written the way agents for the paper's published framework are written: explicit model name,
# Info built by hand, iteration_idx, roles, reading `.content`, returning an Info.
PAPER_STYLE = '''def forward(self, taskInfo):
    import random
    solver = LLMAgentBase(['thinking', 'answer'], 'Solver', model='gpt-3.5-turbo-0125', temperature=0.7)
    checker = LLMAgentBase(['feedback', 'correct'], 'Checker', role='strict math teacher')
    hint = Info('hint', 'Planner', 'Check units.', -1)
    thinking, answer = solver([taskInfo, hint], 'Solve it.')
    for i in range(2):
        feedback, correct = checker([taskInfo, thinking, answer], 'Is it right?', i)
        if correct.content == 'True':
            break
        thinking, answer = solver([taskInfo, thinking, answer, feedback], 'Fix it.', i + 1)
    return answer
'''


def _by_fields(body):
    """Reply with the fields the system prompt asks for."""
    system = body["messages"][0]["content"]
    if '"correct"' in system:
        return json.dumps({"feedback": "fine", "correct": "True"})
    return json.dumps({"thinking": "add them", "answer": "42"})


def test_paper_style_agent_answers_every_question(tmp_path):
    with ScriptedLLM(default=_by_fields) as llm:
        report = run_harness(tmp_path, "evaluate", PAPER_STYLE, QUESTIONS, llm.base_url)
    assert {qid: a["answer"] for qid, a in report["answers"].items()} == {"q0": "42", "q1": "42", "q2": "42"}
    assert len(llm.requests) == 6  # solver + checker per question
    body = llm.requests[0]
    assert body["response_format"] == {"type": "json_object"}
    assert body["model"] == "scripted"  # the gateway's model, whatever the agent asked for
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    assert "# Your Task:\nWhat is" in user and "### hint by Planner:\nCheck units." in user


def test_prompt_asks_for_the_fields_with_the_answer_format(tmp_path):
    with ScriptedLLM(default='{"thinking": "t", "answer": "1"}') as llm:
        run_harness(tmp_path, "evaluate", COT, QUESTIONS[:1], llm.base_url)
    system = llm.requests[0]["messages"][0]["content"]
    assert "You are a helpful assistant." in system
    assert '"answer": "Your answer: ONLY the final number."' in system and '"thinking"' in system


def test_self_consistency_samples_get_distinct_seeds(tmp_path):
    from engine.domains.adas.baselines import COT_SC
    with ScriptedLLM(default='{"thinking": "t", "answer": "5"}') as llm:
        run_harness(tmp_path, "evaluate", COT_SC, QUESTIONS[:1], llm.base_url)
    seeds = [r["seed"] for r in llm.requests]
    assert len(seeds) == 5 and len(set(seeds)) == 5


def test_fenced_reply_with_a_missing_field_is_padded_with_empty_string(tmp_path):
    code = '''def forward(self, taskInfo):
    thinking, answer = LLMAgentBase(['thinking', 'answer'], 'A')([taskInfo], 'Go.')
    return repr(thinking.content) + '|' + answer.content
'''
    with ScriptedLLM(default='```json\n{"answer": "7"}\n```') as llm:
        report = run_harness(tmp_path, "evaluate", code, QUESTIONS[:1], llm.base_url)
    assert report["answers"]["q0"]["answer"] == "''|7"


def test_reply_without_json_becomes_the_last_field(tmp_path):
    with ScriptedLLM(default="The answer is 12") as llm:
        report = run_harness(tmp_path, "evaluate", COT, QUESTIONS[:1], llm.base_url)
    assert report["answers"]["q0"] == {"answer": "The answer is 12", "error": None,
                                       "seconds": report["answers"]["q0"]["seconds"]}


def test_crash_on_one_question_empties_only_that_answer(tmp_path):
    code = '''def forward(self, taskInfo):
    thinking, answer = LLMAgentBase(['thinking', 'answer'], 'A')([taskInfo], 'Go.')
    if '1 + 1' in taskInfo.content:
        return {}['missing']
    return answer
'''
    with ScriptedLLM(default='{"thinking": "t", "answer": "3"}') as llm:
        answers = run_harness(tmp_path, "evaluate", code, QUESTIONS, llm.base_url)["answers"]
    assert answers["q0"]["answer"] == "3" and answers["q2"]["answer"] == "3"
    assert answers["q1"]["answer"] == "" and answers["q1"]["error"] == "KeyError: 'missing' (agent.py line 4)"


def test_slow_question_times_out_and_the_others_still_finish(tmp_path):
    code = '''def forward(self, taskInfo):
    import time
    if '0 + 0' in taskInfo.content:
        time.sleep(60)
    return LLMAgentBase(['answer'], 'A')([taskInfo], 'Go.')[0]
'''
    with ScriptedLLM(default='{"answer": "9"}') as llm:
        answers = run_harness(tmp_path, "evaluate", code, QUESTIONS, llm.base_url, threads=1,
                              question_timeout_s=6)["answers"]
    assert answers["q0"]["error"] == "timed out after 6s" and answers["q0"]["answer"] == ""
    assert (answers["q1"]["answer"], answers["q2"]["answer"]) == ("9", "9"), answers


def test_selftest_passes_a_good_agent_without_any_real_llm_call(tmp_path):
    report = run_harness(tmp_path, "selftest", PAPER_STYLE, QUESTIONS, base_url="http://127.0.0.1:9/v1")
    assert report["ok"] is True and report["calls"] >= 2


@pytest.mark.parametrize(("code", "reason"), [
    ("def forward(self, taskInfo):\n    return LLMAgentBase(['answer'], 'A')([taskInfo], 'Go.')\n",
     "forward must return an Info or a string, got list"),
    ("def forward(self, taskInfo):\n    a = LLMAgentBase(['answer'], 'A')([taskInfo], 'Go.')\n    return a[3]\n",
     "forward crashed on sample task 1: IndexError: list index out of range (agent.py line 3)"),
    ("def forward(self, taskInfo):\n    LLMAgentBase(['answer'], 'A')([taskInfo], 'Go.')\n    return ''\n",
     "forward returned an empty answer on sample task 1"),
    ("def forward(self, taskInfo):\n    return 'constant'\n", "forward never called an LLMAgentBase agent"),
    ("def forward(self, taskInfo):\n    while True:\n        pass\n",
     "forward did not finish within 5s on sample task 1 (stub LLM)"),
    ("def forward(self, taskInfo)\n    return 1\n", "SyntaxError: expected ':' (agent.py line 1)"),
    ("x = 1\n", "define one function forward(self, taskInfo); found none"),
    ("def forward(taskInfo):\n    return 1\n", "forward must take exactly (self, taskInfo)"),
])
def test_selftest_gives_a_one_line_reason(tmp_path, code, reason):
    report = run_harness(tmp_path, "selftest", code, QUESTIONS)
    assert report == {"ok": False, "reason": reason, "calls": report["calls"]}


ARC_QUESTION = {"id": "t1", "question": "grids", "inputs": {
    "examples": [{"input": [[1, 2]], "output": [[2, 1]]}, {"input": [[3, 4]], "output": [[4, 3]]}],
    "test_input": [[5, 6]]}}
# As the paper's ARC agents do: the `code` Info an LLM call returned goes straight to the tools.
ARC_AGENT = '''def forward(self, taskInfo):
    coder = LLMAgentBase(['thinking', 'code'], 'Coder')
    thinking, code = coder([taskInfo], 'Write transform.')
    feedback, correct_examples, wrong_examples = self.run_examples_and_get_feedback(code)
    if wrong_examples:
        thinking, code = coder([taskInfo, thinking, code, feedback], 'Fix it.', 1)
    return self.get_test_output_from_code(code)
'''
ARC_AGENT_WITH_TEXT = ARC_AGENT.replace("(code)", "(code.content)")  # a string works as well


@pytest.mark.parametrize("agent", [ARC_AGENT, ARC_AGENT_WITH_TEXT], ids=["info", "text"])
def test_arc_tools_run_transform_inside_the_agent_process(tmp_path, agent):
    flip = "```python\ndef transform(grid):\n    return [row[::-1] for row in grid]\n```"
    with ScriptedLLM(default=json.dumps({"thinking": "reverse rows", "code": flip})) as llm:
        report = run_harness(tmp_path, "evaluate", agent, [ARC_QUESTION], llm.base_url, benchmark="arc")
    assert report["answers"]["t1"] == {"answer": "[[6,5]]", "error": None,
                                       "seconds": report["answers"]["t1"]["seconds"]}  # the paper's grid text
    assert len(llm.requests) == 1  # both examples passed: no second call


def test_arc_feedback_reports_wrong_examples_in_the_papers_words(tmp_path):
    wrong = "def transform(grid):\n    return grid"
    with ScriptedLLM(default=json.dumps({"thinking": "t", "code": wrong})) as llm:
        run_harness(tmp_path, "evaluate", ARC_AGENT, [ARC_QUESTION], llm.base_url, benchmark="arc")
    second = llm.requests[1]["messages"][1]["content"]
    assert ("### feedback by Coder" in second and "'s code evaluator:\nYour transform function generates a WRONG "
            "answer in Example 1!\nExpect: [[2,1]]\nYou got: [[1,2]]\nObserve the Example 1 carefully!") in second


def test_arc_selftest_accepts_a_grid_answer(tmp_path):
    report = run_harness(tmp_path, "selftest", ARC_AGENT, [ARC_QUESTION], benchmark="arc")
    assert report["ok"] is True


# ---- the stub's replies fit the field, and a crash the stub caused does not fail the agent ----
def test_stub_replies_are_plausible_for_the_field_asked(tmp_path):
    code = '''def forward(self, taskInfo):
    import json
    fields = ['thinking', 'answer', 'confidence', 'score', 'correct']
    return json.dumps([i.content for i in LLMAgentBase(fields, 'A')([taskInfo], 'Go.')])
'''
    questions = [{"id": "m", "question": "Pick one.\\n(A) x\\n(B) y", "inputs": {}}]
    from engine.domains.adas.box import stub  # the host imports the box as a package too
    for benchmark, answers in stub.ANSWERS.items():
        report = run_harness(tmp_path / benchmark, "selftest", code, questions, benchmark=benchmark)
        assert report["ok"] is True, report
    values = stub.reply(['thinking', 'answer', 'confidence', 'rating', 'is_correct', 'code'], "mmlu",
                        stub.Shape.TYPICAL)
    assert values["answer"] == "A" and float(values["confidence"]) == 0.8 and int(values["rating"]) == 8
    assert values["is_correct"] == "True" and "def transform(grid)" in values["code"]
    other = stub.reply(['answer', 'confidence'], "gpqa", stub.Shape.OTHER)
    assert other == {"answer": "D", "confidence": 0.9}


def test_a_crash_that_changes_with_the_stub_replies_does_not_fail_the_agent(tmp_path):
    # Compares the string "0.8" with a number: crashes on the typical (string) reply only.
    code = '''def forward(self, taskInfo):
    answer, confidence = LLMAgentBase(['answer', 'confidence'], 'A')([taskInfo], 'Go.')
    if confidence.content > 0.5:
        return answer
    return 'unsure'
'''
    report = run_harness(tmp_path, "selftest", code, QUESTIONS)
    assert report["ok"] is True, report


def test_a_crash_at_the_same_line_with_both_stub_shapes_fails_the_agent(tmp_path):
    code = '''def forward(self, taskInfo):
    thinking, answer = LLMAgentBase(['thinking', 'answer'], 'A')([taskInfo], 'Go.')
    return str(int(thinking.content) + 1)
'''
    report = run_harness(tmp_path, "selftest", code, QUESTIONS)
    assert report["reason"] == ("forward crashed on sample task 1: ValueError: invalid literal for int() with base 10: "
                                "'A short thinking from the stub LLM.' (agent.py line 3)")


def test_arc_transform_errors_are_feedback_and_the_questions_error(tmp_path):
    broken = "def transform(grid):\n    return grid[0][0] / 0"
    with ScriptedLLM(default=json.dumps({"thinking": "t", "code": broken})) as llm:
        report = run_harness(tmp_path, "evaluate", ARC_AGENT, [ARC_QUESTION], llm.base_url, benchmark="arc")
    error = "Error during function execution: ZeroDivisionError: division by zero"
    assert f"{error} (Example 1)\n\n{error} (Example 2)" in llm.requests[1]["messages"][1]["content"]
    entry = report["answers"]["t1"]
    assert (entry["answer"], entry["error"]) == (error, f"get_test_output_from_code: {error}")


def test_arc_agents_may_read_the_test_input_under_either_spelling(tmp_path):
    code = '''def forward(self, taskInfo):
    LLMAgentBase(['thinking', 'code'], 'Coder')([taskInfo], 'Write transform.')
    return list_to_string(self.test_input) + '|' + list_to_string(np.array(self.test_iuput).T.tolist())
'''
    with ScriptedLLM(default='{"thinking": "t", "code": "x"}') as llm:
        report = run_harness(tmp_path, "evaluate", code, [ARC_QUESTION], llm.base_url, benchmark="arc")
    assert report["answers"]["t1"]["answer"] == "[[5,6]]|[[5],[6]]"
