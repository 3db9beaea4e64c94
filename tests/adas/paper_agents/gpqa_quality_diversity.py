def forward(self, taskInfo):
    # Quality-Diversity: several deliberately different attempts, then a final decision.
    cot_initial_instruction = "Please think step by step and then solve the task."
    qd_instruction = "Given previous attempts, try to come up with another interesting way to solve the task."
    cot_agent = LLMAgentBase(['thinking', 'answer'], 'Chain-of-Thought Agent')
    final_decision_agent = LLMAgentBase(['thinking', 'answer'], 'Final Decision Agent', temperature=0.1)
    N_max = 3
    cot_inputs = [taskInfo]
    possible_answers = []
    thinking, answer = cot_agent(cot_inputs, cot_initial_instruction, 0)
    possible_answers.extend([thinking, answer])
    for i in range(N_max):
        cot_inputs.extend([thinking, answer])
        thinking, answer = cot_agent(cot_inputs, qd_instruction, i + 1)
        possible_answers.extend([thinking, answer])
    thinking, answer = final_decision_agent([taskInfo] + possible_answers,
                                            "Given all the above solutions, reason over them carefully and "
                                            "provide a final answer.")
    return answer
