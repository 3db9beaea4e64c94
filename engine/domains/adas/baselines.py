"""The seven hand-written agents that seed the archive, written from their papers.

Each is a `forward(self, taskInfo)` in the framework's style, so the meta LLM reads them as
examples. Instructions stay benchmark-neutral: the answer format comes from the framework.
"""

from __future__ import annotations

import enum

from engine.search.candidate import Proposal


class BaselineName(str, enum.Enum):
    COT = "cot"
    COT_SC = "cot_sc"
    SELF_REFINE = "self_refine"
    DEBATE = "debate"
    STEP_BACK = "step_back"
    QUALITY_DIVERSITY = "quality_diversity"
    ROLE_ASSIGNMENT = "role_assignment"


COT = '''def forward(self, taskInfo):
    # One call that reasons step by step before answering (Wei et al., 2022).
    cot_agent = LLMAgentBase(['thinking', 'answer'], 'Chain-of-Thought Agent')
    thinking, answer = cot_agent([taskInfo], 'Please think step by step and then solve the task.')
    return answer
'''

COT_SC = '''def forward(self, taskInfo):
    # Five independent chains at a higher temperature; the most common answer wins
    # (Wang et al., 2023).
    from collections import Counter
    instruction = 'Please think step by step and then solve the task.'
    answers = []
    for i in range(5):
        cot_agent = LLMAgentBase(['thinking', 'answer'], 'Chain-of-Thought Agent', temperature=0.8)
        thinking, answer = cot_agent([taskInfo], instruction)
        answers.append(str(answer.content))
    return Counter(answers).most_common(1)[0][0]
'''

SELF_REFINE = '''def forward(self, taskInfo):
    # Answer, get critical feedback, revise; stop when the critic is satisfied or after
    # 5 rounds (Madaan et al., 2023).
    cot_agent = LLMAgentBase(['thinking', 'answer'], 'Chain-of-Thought Agent')
    critic = LLMAgentBase(['feedback', 'correct'], 'Critic Agent')
    thinking, answer = cot_agent([taskInfo], 'Please think step by step and then solve the task.')
    for i in range(5):
        feedback, correct = critic([taskInfo, thinking, answer],
                                   'Check the answer above and say where it may be wrong. '
                                   "If you are sure it is right, put 'True' in correct.", i)
        if str(correct.content).strip().lower() == 'true':
            break
        thinking, answer = cot_agent([taskInfo, thinking, answer, feedback],
                                     'Use the feedback to think again and give a better answer.', i + 1)
    return answer
'''

DEBATE = '''def forward(self, taskInfo):
    # Three agents with different roles answer, read each other's answers and update them
    # for 2 rounds; a final agent decides (Du et al., 2023).
    roles = ['careful expert', 'skeptical reviewer', 'creative problem solver']
    debaters = [LLMAgentBase(['thinking', 'answer'], 'Debate Agent', role=role, temperature=0.8)
                for role in roles]
    final_agent = LLMAgentBase(['thinking', 'answer'], 'Final Decision Agent', temperature=0.1)
    previous = []
    for r in range(2):
        current = []
        for agent in debaters:
            if r == 0:
                current += agent([taskInfo], 'Please think step by step and then solve the task.')
            else:
                current += agent([taskInfo] + previous,
                                 "Use the other agents' answers as advice and give an updated answer.", r)
        previous = current
    thinking, answer = final_agent([taskInfo] + previous,
                                   'Weigh all the answers above carefully and give the final answer.')
    return answer
'''

STEP_BACK = '''def forward(self, taskInfo):
    # First step back to the principles behind the task, then solve it with them
    # (Zheng et al., 2024).
    principle_agent = LLMAgentBase(['thinking', 'principle'], 'Principle Agent')
    cot_agent = LLMAgentBase(['thinking', 'answer'], 'Chain-of-Thought Agent')
    thinking, principle = principle_agent([taskInfo], 'Which concepts or principles does this task involve? '
                                          'Think step by step, then list and explain them.')
    thinking, answer = cot_agent([taskInfo, thinking, principle],
                                 'Use the principles above, think step by step and then solve the task.')
    return answer
'''

QUALITY_DIVERSITY = '''def forward(self, taskInfo):
    # Ask for three solutions that differ from the earlier ones, then combine the best of
    # them (after Quality-Diversity search, Lehman & Stanley, 2011).
    cot_agent = LLMAgentBase(['thinking', 'answer'], 'Chain-of-Thought Agent', temperature=0.8)
    final_agent = LLMAgentBase(['thinking', 'answer'], 'Final Decision Agent', temperature=0.1)
    attempts = cot_agent([taskInfo], 'Please think step by step and then solve the task.')
    for i in range(2):
        attempts += cot_agent([taskInfo] + attempts,
                              'Solve the task again in a way different from the attempts above.', i + 1)
    thinking, answer = final_agent([taskInfo] + attempts,
                                   'Weigh all the attempts above carefully and give the final answer.')
    return answer
'''

ROLE_ASSIGNMENT = '''def forward(self, taskInfo):
    # A router picks the expert best suited to the task, who then answers it
    # (role-play prompting, Xu et al., 2023).
    experts = {'math': 'math professor', 'reading': 'reading comprehension expert',
               'science': 'science expert', 'general': 'helpful assistant'}
    router = LLMAgentBase(['choice'], 'Routing Agent', temperature=0.1)
    choice = router([taskInfo], 'Which expert should solve this task? '
                    'Answer with one word: math, reading, science or general.')[0]
    text = str(choice.content).lower()
    role = next((name for key, name in experts.items() if key in text), 'helpful assistant')
    expert = LLMAgentBase(['thinking', 'answer'], 'Expert Agent', role=role)
    thinking, answer = expert([taskInfo], 'Please think step by step and then solve the task.')
    return answer
'''

BASELINES: dict[BaselineName, Proposal] = {
    BaselineName.COT: Proposal("Chain-of-Thought", "Reason step by step before answering.", COT),
    BaselineName.COT_SC: Proposal("Self-Consistency with Chain-of-Thought",
                                  "Several reasoning chains vote; the majority answer is more reliable.", COT_SC),
    BaselineName.SELF_REFINE: Proposal("Self-Refine (Reflexion)",
                                       "Critique and revise the answer until it holds up.", SELF_REFINE),
    BaselineName.DEBATE: Proposal("LLM Debate", "Agents with different views correct each other.", DEBATE),
    BaselineName.STEP_BACK: Proposal("Step-back Abstraction",
                                     "Name the principles first; then solve with them.", STEP_BACK),
    BaselineName.QUALITY_DIVERSITY: Proposal("Quality-Diversity",
                                             "Diverse attempts, then the best combined answer.", QUALITY_DIVERSITY),
    BaselineName.ROLE_ASSIGNMENT: Proposal("Dynamic Assignment of Roles",
                                           "Route each task to the most suitable expert role.", ROLE_ASSIGNMENT),
}


def baselines(names: list[BaselineName]) -> list[Proposal]:
    """The chosen baselines, in the given order."""
    return [BASELINES[name] for name in names]
