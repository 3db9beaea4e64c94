def forward(self, taskInfo):
    # Five experts answer with their confidence; a judge rates each reasoning from 1 to 10;
    # the option with the most confidence x rating wins.
    from collections import defaultdict

    roles = ['Physics Expert', 'Chemistry Expert', 'Biology Expert', 'History Expert', 'Science Generalist']
    experts = [LLMAgentBase(['thinking', 'answer', 'confidence'], 'Expert Agent', role=role, temperature=0.6)
               for role in roles]
    judge = LLMAgentBase(['feedback', 'score'], 'Judge Agent', temperature=0.1)
    weights = defaultdict(float)
    for expert in experts:
        thinking, answer, confidence = expert([taskInfo], "Think step by step, answer, and give your confidence "
                                                          "between 0 and 1.")
        feedback, score = judge([taskInfo, thinking, answer], "Rate the reasoning above from 1 to 10 in score.")
        weights[answer.content.strip()] += float(confidence.content) * int(score.content)
    return max(weights, key=weights.get)
