"""Agent framework. An agent is `forward(self, taskInfo)` returning an Info or a string.

taskInfo is Info('task', 'User', <the question>, -1). Build agents from LLMAgentBase calls:
each call asks the LLM for one JSON object with the requested `output_fields` and returns
them as a list of Info, in the order requested (a field the LLM left out is '').
"""
import json
import random
import string
from collections import namedtuple

from adas_box import backend

# name: field name ('task', 'thinking', 'answer', ...); author: the agent that wrote it;
# content: the value; iteration_idx: round number, -1 outside loops.
Info = namedtuple('Info', ['name', 'author', 'content', 'iteration_idx'])


def random_id(length=4):
    return ''.join(random.choices(string.ascii_letters + string.digits, k=length))


class LLMAgentBase:
    """One LLM persona. Call it: agent(input_infos, instruction, iteration_idx=-1) -> list[Info]."""

    def __init__(self, output_fields, agent_name, role='helpful assistant', model=None, temperature=0.5):
        self.output_fields = list(output_fields)
        self.agent_name = agent_name
        self.role = role
        self.model = model  # kept for compatibility: the engine's gateway picks the model
        self.temperature = temperature
        self.id = random_id()

    def generate_prompt(self, input_infos, instruction):
        """System prompt (role + JSON fields) and user prompt (the input Infos, then the instruction)."""
        fields = {name: backend.describe_field(name) for name in self.output_fields}
        system = (f"You are a {self.role}.\n\nReply with ONLY a JSON object with these keys:\n"
                  f"{json.dumps(fields, indent=2)}\nDo not add other keys or text outside the JSON.")
        parts = []
        for info in input_infos:
            if not isinstance(info, Info):
                continue
            name, author, content, idx = info
            if isinstance(content, list):  # ARC grids, compact as in the task text
                content = json.dumps(content, separators=(',', ':'), default=str)
            if author == repr(self):
                author += ' (yourself)'
            if name == 'task':
                parts.append(f'# Your Task:\n{content}')
            elif idx == -1:
                parts.append(f'### {name} by {author}:\n{content}')
            else:
                parts.append(f'### {name} #{idx + 1} by {author}:\n{content}')
        return system, '\n\n'.join(parts + [instruction])

    def query(self, input_infos, instruction, iteration_idx=-1):
        system, prompt = self.generate_prompt(input_infos, instruction)
        reply = backend.ask_json(system, prompt, self.output_fields, self.temperature)
        return [Info(name, repr(self), reply.get(name, ''), iteration_idx) for name in self.output_fields]

    def __repr__(self):
        return f'{self.agent_name} {self.id}'

    def __call__(self, input_infos, instruction, iteration_idx=-1):
        return self.query(input_infos, instruction, iteration_idx)


class AgentSystem:
    """`forward` is attached to this class. ARC tasks also set `examples` (train pairs) and
    `test_iuput` (sic, as in the paper), and agents may test `transform` code with the two tools.
    Both take the code as the paper's do: the Info an LLM call returned, or a string."""

    def __init__(self, examples=None, test_iuput=None):
        self.examples = examples or []
        self.test_iuput = test_iuput

    @property
    def test_input(self):
        """The spelling of the paper's prompt, which documents `test_input` (its code has `test_iuput`)."""
        return self.test_iuput

    def run_examples_and_get_feedback(self, code):
        """Run `def transform(grid)` from `code` on the train pairs.
        Returns (Info feedback, correct_examples, wrong_examples)."""
        text, author = _code_and_author(code)
        feedback, correct, wrong = backend.examples_feedback(text, self.examples)
        return Info('feedback', _evaluator(author), feedback, -1), correct, wrong

    def get_test_output_from_code(self, code):
        """Run `transform` on the test input; returns Info('answer', ...) whose content is the
        output grid as text ('[[1,2],[3,4]]'), or the error text."""
        text, author = _code_and_author(code)
        return Info('answer', _evaluator(author), backend.test_output(text, self.test_iuput), -1)


def _code_and_author(code):
    if isinstance(code, Info):
        return str(code.content), code.author
    return str(code), None


def _evaluator(author):
    return f"{author}'s code evaluator" if author else 'code evaluator'
