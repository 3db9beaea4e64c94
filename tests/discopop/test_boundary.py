"""What a DiscoPOP candidate's container holds: what training needs, nothing that rebuilds the
reward or the evaluation prompts.

The reward of the proxy task is "wanted words minus unwanted words", the classes fixed by the
lexicon in `dpbox/reward.py`. A candidate that could map its tokens back to words, or read the
evaluation seed, could aim its loss at the scorer instead of at the preferences. So its /in
(the artifact's train/ part) names tokens opaquely in a secret order, and the word mapping, the
build metadata and the evaluation prompts live in the eval/ part, which only the evaluation
container (never holding candidate code) mounts. `layers.py` is the table of that boundary.
"""

from __future__ import annotations

import json
import re

import pytest

from engine.domains.discopop import baselines, layers
from engine.domains.discopop.dpbox import reward
from engine.domains.discopop.dpbox.lexicon import LEXICON_FILE, Lexicon
from tests.discopop.conftest import evaluate

WORDS = reward.vocabulary()
TRAIN_FILES = {"tokenizer.json", "model.json", "reference.safetensors", "pairs.jsonl"}


def test_token_names_are_opaque_and_their_order_is_keyed():
    lexicon = Lexicon.keyed(WORDS, b"k" * 32)
    assert all(re.fullmatch(r"t\d+", name) for name in lexicon.tokens())
    assert not set(lexicon.tokens()) & set(WORDS)
    assert Lexicon.keyed(WORDS, b"k" * 32).names == lexicon.names  # one secret, one order (resume)
    assert Lexicon.keyed(WORDS, b"j" * 32).names != lexicon.names
    order = [lexicon.words[name] for name in lexicon.tokens()]
    assert order != WORDS  # the vocabulary's order is not the lexicon's (tags, neutral, warm, cold)


def test_the_candidate_image_holds_no_reward_lexicon_spec_or_evaluator():
    files = layers.candidate_files("def loss(a, b, c, d, beta):\n    return a\n")
    assert not {f"dpbox/{name}" for name in layers.TASK_ONLY} & set(files)
    blob = b"\n".join(files.values())
    for marker in (b"want-warm", b"want-cold", b"blizzard", b"glacier", b"eval_seed", b"eval_prompts"):
        assert marker not in blob, marker


@pytest.mark.docker
def test_the_candidates_in_has_training_material_only(prepared):
    domain = prepared(betas=[1.0], seeds=[0], training={"max_pairs": 128})
    in_dir = domain.inputs_dir
    assert {p.name for p in in_dir.iterdir()} == TRAIN_FILES  # no meta.json, no lexicon, no eval prompts
    vocabulary = json.loads((in_dir / "tokenizer.json").read_text())["model"]["vocab"]
    names = {token for token in vocabulary if not token.startswith("<")}
    assert len(names) == len(WORDS) and not names & set(WORDS)
    assert all(re.fullmatch(r"t\d+", name) for name in names)
    pair_tokens = {token for line in (in_dir / "pairs.jsonl").read_text().splitlines()
                   for text in json.loads(line).values() for token in text.split()}
    assert pair_tokens <= names  # pairs are written in token names, not words
    for path in in_dir.iterdir():
        if path.suffix in (".json", ".jsonl"):
            text = path.read_text()
            assert "eval_seed" not in text and "want-" not in text and "blizzard" not in text, path.name
    artifact = in_dir.parent
    assert (artifact / layers.ARTIFACT_EVAL / LEXICON_FILE).is_file()  # the evaluator's part exists
    # the mapping is a secret permutation: the vocabulary's ids do not follow the lexicon's order
    mapping = json.loads((artifact / layers.ARTIFACT_EVAL / LEXICON_FILE).read_text())
    assert [mapping[word] for word in WORDS] != sorted(names)


@pytest.mark.docker
@pytest.mark.slow
def test_the_evaluator_scores_through_its_own_mapping(prepared, dp_run):
    """Training from the opaque /in and scoring in the evaluation container still work: DPO
    moves reward up from the reference's."""
    domain = prepared(betas=[1.0], seeds=[0], training={"max_pairs": 128})
    result = evaluate(domain, dp_run, baselines.DPO)
    run = result.detail["per_beta"]["1"]["runs"]["0"]
    assert run["reward"] > result.detail["reference"]["reward"]
