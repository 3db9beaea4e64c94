def forward(self, taskInfo):
    # LLM Debate: agents with different roles answer, read each other's answers for two rounds,
    # and a final agent decides.
    debate_initial_instruction = "Please think step by step and then solve the task."
    debate_instruction = ("Given solutions to the problem from other agents, consider their opinions as "
                          "additional advice. Please think carefully and provide an updated answer.")
    debate_agents = [LLMAgentBase(['thinking', 'answer'], 'Debate Agent', temperature=0.8, role=role)
                     for role in ['Reading Comprehension Expert', 'Logical Reasoning Strategist', 'Sports Analyst']]
    final_decision_agent = LLMAgentBase(['thinking', 'answer'], 'Final Decision Agent', temperature=0.1)
    max_round = 2
    all_thinking = [[] for _ in range(max_round)]
    all_answer = [[] for _ in range(max_round)]
    for r in range(max_round):
        for i in range(len(debate_agents)):
            if r == 0:
                thinking, answer = debate_agents[i]([taskInfo], debate_initial_instruction)
            else:
                input_infos = [taskInfo] + [all_thinking[r - 1][i]] + all_thinking[r - 1][:i] + all_thinking[r - 1][i + 1:]
                thinking, answer = debate_agents[i](input_infos, debate_instruction)
            all_thinking[r].append(thinking)
            all_answer[r].append(answer)
    thinking, answer = final_decision_agent([taskInfo] + all_thinking[max_round - 1] + all_answer[max_round - 1],
                                            "Given all the above thinking and answers, reason over them carefully "
                                            "and provide a final answer.")
    return answer
