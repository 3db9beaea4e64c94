def forward(self, taskInfo):
    # Step-back abstraction: name the principles first, then answer with them in mind.
    principle_instruction = ("What are the concepts and reasoning steps involved in answering this question? "
                             "First think step by step. Then list them and explain them.")
    cot_instruction = "Given the question and the involved principles, think step by step and then solve the task."
    principle_agent = LLMAgentBase(['thinking', 'principle'], 'Principle Agent')
    cot_agent = LLMAgentBase(['thinking', 'answer'], 'Chain-of-Thought Agent')
    thinking, principle = principle_agent([taskInfo], principle_instruction)
    thinking, answer = cot_agent([taskInfo, thinking, principle], cot_instruction)
    return answer
