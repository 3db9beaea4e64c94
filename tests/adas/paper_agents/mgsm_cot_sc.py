def forward(self, taskInfo):
    # Self-consistency: several chains of thought at a high temperature, then a majority vote
    # over the answers (the paper's CoT-SC baseline returns the winning string).
    from collections import Counter

    cot_instruction = "Please think step by step and then solve the task."
    N = 5
    cot_agents = [LLMAgentBase(['thinking', 'answer'], 'Chain-of-Thought Agent', temperature=0.8) for _ in range(N)]

    def majority_voting(answers):
        return Counter(answers).most_common(1)[0][0]

    possible_answers = []
    for i in range(N):
        thinking, answer = cot_agents[i]([taskInfo], cot_instruction)
        possible_answers.append(answer.content)
    return majority_voting(possible_answers)
