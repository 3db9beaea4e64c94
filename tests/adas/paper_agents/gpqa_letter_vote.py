def forward(self, taskInfo):
    # Self-consistency over option letters: each sample's letter is read with a regular
    # expression, and the most common letter wins.
    import re
    from collections import Counter

    agents = [LLMAgentBase(['thinking', 'answer'], 'Chain-of-Thought Agent', temperature=0.8) for _ in range(3)]
    letters = []
    for agent in agents:
        thinking, answer = agent([taskInfo], "Please think step by step and then solve the task.")
        match = re.search(r'[ABCD]', str(answer.content).upper())
        if match:
            letters.append(match.group(0))
    return Counter(letters).most_common(1)[0][0]
