def forward(self, taskInfo):
    # Chain-of-Thought that writes the transformation as code, run on the test input.
    cot_instruction = "Please think step by step and then solve the task by writing the code."
    cot_agent = LLMAgentBase(['thinking', 'code'], 'Chain-of-Thought Agent')
    thinking, code = cot_agent([taskInfo], cot_instruction)
    answer = self.get_test_output_from_code(code)
    return answer
