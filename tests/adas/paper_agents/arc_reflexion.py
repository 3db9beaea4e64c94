def forward(self, taskInfo):
    # Self-Refine (Reflexion): test the code on the examples and refine it with the feedback.
    cot_initial_instruction = "Please think step by step and then solve the task by writing the code."
    cot_reflect_instruction = ("Given previous attempts and feedback, carefully consider where you went wrong in "
                               "your latest attempt. Using insights from previous attempts, try to solve the task better.")
    cot_agent = LLMAgentBase(['thinking', 'code'], 'Chain-of-Thought Agent')
    N_max = 3
    thinking, code = cot_agent([taskInfo], cot_initial_instruction, 0)
    for i in range(N_max):
        feedback, correct_examples, wrong_examples = self.run_examples_and_get_feedback(code)
        attempt = [thinking, code, feedback]
        thinking, code = cot_agent([taskInfo] + attempt, cot_reflect_instruction, i + 1)
    answer = self.get_test_output_from_code(code)
    return answer
