def forward(self, taskInfo):
    # Self-Refine where the critic states how sure it is: stop once it is confident enough.
    solver = LLMAgentBase(['thinking', 'answer'], 'Chain-of-Thought Agent')
    critic = LLMAgentBase(['feedback', 'confidence'], 'Critic Agent', temperature=0.3)
    thinking, answer = solver([taskInfo], "Please think step by step and then solve the task.", 0)
    for i in range(3):
        feedback, confidence = critic([taskInfo, thinking, answer],
                                      "Review the answer above. Give feedback, and your confidence "
                                      "(a number between 0 and 1) that it is correct.", i)
        if float(confidence.content) >= 0.8:
            break
        thinking, answer = solver([taskInfo, thinking, answer, feedback],
                                  "Given the feedback, carefully solve the task again.", i + 1)
    return answer
