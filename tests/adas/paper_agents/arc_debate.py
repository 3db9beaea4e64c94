def forward(self, taskInfo):
    # LLM Debate over code: each debater's code is run on the test input, and the outputs (Infos
    # from get_test_output_from_code) are what the others read in the next round.
    debate_initial_instruction = "Please think step by step and then solve the task by writing the code."
    debate_instruction = ("Given solutions to the problem from other agents, consider their opinions as additional "
                          "advice. Please think carefully and provide an updated answer by writing the code.")
    debate_agents = [LLMAgentBase(['thinking', 'code'], 'Debate Agent', temperature=0.6, role=role)
                     for role in ['Puzzle Game Designer', 'Expert Logician']]
    final_decision_agent = LLMAgentBase(['thinking', 'code'], 'Final Decision Agent', temperature=0.1)
    max_round = 2
    all_results = [[] for _ in range(max_round)]
    for r in range(max_round):
        for i in range(len(debate_agents)):
            if r == 0:
                thinking, code = debate_agents[i]([taskInfo], debate_initial_instruction)
            else:
                thinking, code = debate_agents[i]([taskInfo] + all_results[r - 1], debate_instruction)
            answer = self.get_test_output_from_code(code)
            all_results[r].extend([thinking, answer])
    thinking, code = final_decision_agent([taskInfo] + all_results[max_round - 1],
                                          "Given all the above thinking and answers, reason over them carefully and "
                                          "provide a final answer by writing the code.")
    return self.get_test_output_from_code(code)
