"""The proxy task's lexicon and its exact reward. Task image only: never in a candidate image.

Every prompt starts with a tag naming the kind of word wanted (warm or cold). The reward of a
completion is (#wanted words - #unwanted words) / completion length, in [-1, 1]. Because half
the prompts want each kind, preference pairs pull the policy in prompt-dependent directions: a
loss cannot score by shifting all probability onto one word class.
"""

from __future__ import annotations

TAGS = {"want-warm": "warm", "want-cold": "cold"}

NEUTRAL = (
    "the a of and to in it is was for on with as at by this that from or but not are be have "
    "has had were will would can could so if"
).split()
WARM = "sun fire summer heat flame beach desert noon sand candle oven spice tea coal ember lava".split()
COLD = "snow ice winter frost glacier sleet hail polar arctic blizzard freezer icicle tundra chill frozen igloo".split()
CLASSES = {"warm": frozenset(WARM), "cold": frozenset(COLD)}


def vocabulary() -> list[str]:
    """Every non-special word the tokenizer knows, in a fixed order."""
    return list(TAGS) + NEUTRAL + WARM + COLD


def reward(prompt: str, completion: str, length: int) -> float:
    """Exact reward of one completion for one prompt (words counted over `length` slots)."""
    tag = prompt.split()[0]
    wanted = TAGS[tag]
    unwanted = "cold" if wanted == "warm" else "warm"
    words = completion.split()
    good = sum(word in CLASSES[wanted] for word in words)
    bad = sum(word in CLASSES[unwanted] for word in words)
    return (good - bad) / length
