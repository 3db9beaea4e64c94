def forward(self, taskInfo):
    # Dynamic assignment of roles: a router picks the expert who answers.
    cot_instruction = "Please think step by step and then solve the task."
    expert_agents = [LLMAgentBase(['thinking', 'answer'], 'Expert Agent', role=role)
                     for role in ['Physics Expert', 'Chemistry Expert', 'Biology Expert', 'Science Generalist']]
    routing_instruction = ("Given the task, please choose an Expert to answer the question. "
                           "Choose from: Physics, Chemistry, Biology Expert, or Science Generalist.")
    routing_agent = LLMAgentBase(['choice'], 'Routing agent')
    choice = routing_agent([taskInfo], routing_instruction)[0]
    if 'physics' in choice.content.lower():
        expert_id = 0
    elif 'chemistry' in choice.content.lower():
        expert_id = 1
    elif 'biology' in choice.content.lower():
        expert_id = 2
    else:
        expert_id = 3
    thinking, answer = expert_agents[expert_id]([taskInfo], cot_instruction)
    return answer
