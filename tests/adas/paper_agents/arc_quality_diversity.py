def forward(self, taskInfo):
    # Quality-Diversity over code: diverse attempts scored on the examples; the best ones go to
    # a final decision. numpy picks the best attempt, as agents written for the paper's
    # environment may.
    import numpy as np

    cot_initial_instruction = "Please think step by step and then solve the task by writing the code."
    cot_QD_instruction = ("Given previous attempts, try to come up with another interesting way to solve the task "
                          "by writing the code.")
    cot_agent = LLMAgentBase(['thinking', 'code'], 'Chain-of-Thought Agent')
    final_decision_agent = LLMAgentBase(['thinking', 'code'], 'Final Decision Agent', temperature=0.1)
    N_max = 3
    qd_inputs = [taskInfo]
    possible_answers = []
    for i in range(N_max):
        thinking, code = cot_agent(qd_inputs[-3:], cot_initial_instruction if i == 0 else cot_QD_instruction, i)
        feedback, correct_examples, wrong_examples = self.run_examples_and_get_feedback(code)
        qd_inputs.extend([thinking, code, feedback])
        possible_answers.append({'thinking': thinking, 'code': code, 'feedback': feedback,
                                 'correct_count': len(correct_examples)})
    best = possible_answers[int(np.argmax([a['correct_count'] for a in possible_answers]))]
    sorted_answers = sorted(possible_answers, key=lambda x: x['correct_count'], reverse=True)
    top_solutions = [best] + [a for a in sorted_answers if a is not best][:1]
    final_inputs = [taskInfo] + [item for solution in top_solutions
                                 for item in [solution['thinking'], solution['code'], solution['feedback']]]
    thinking, code = final_decision_agent(final_inputs, "Given all the above solutions, reason over them carefully "
                                                        "and provide a final answer by writing the code.")
    return self.get_test_output_from_code(code)
