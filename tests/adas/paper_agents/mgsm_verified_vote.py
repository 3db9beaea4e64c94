def forward(self, taskInfo):
    # Three solvers with different roles; a verifier checks each solution, and only verified
    # answers take part in the vote.
    roles = ['Math Professor', 'Careful Accountant', 'Puzzle Expert']
    solvers = [LLMAgentBase(['thinking', 'answer'], 'Solver Agent', role=role, temperature=0.7) for role in roles]
    verifier = LLMAgentBase(['thinking', 'correct'], 'Verifier Agent', temperature=0.1)
    verified = []
    for solver in solvers:
        thinking, answer = solver([taskInfo], "Please think step by step and then solve the task.")
        check, correct = verifier([taskInfo, thinking, answer],
                                  "Check the solution above. Put 'True' in correct if it is right, else 'False'.")
        if correct.content == 'True':
            verified.append(answer.content)
    return max(set(verified), key=verified.count)
