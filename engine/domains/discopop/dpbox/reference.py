"""Build the proxy task's reference artifact: tokenizer, SFT reference policy, ranked pairs.

Runs once per proxy setting in the task image
(`python -m dpbox.reference <out_dir> <spec> <vocabulary key, hex>`); the engine caches the
directory under a hash of the spec and the task secret's fingerprint. It has two parts:
- train/ (mounted read-only at every candidate container's /in): tokenizer, model size,
  reference weights, pairs. Every word is an opaque token name (`lexicon.py`) and the pairs hold
  text only, no rewards: candidates see rankings, never the reward function or the word classes;
- eval/ (mounted only into the evaluation container, which holds no candidate code): the
  word <-> token mapping and the build's metadata (the spec, with the evaluation seed).
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from . import lm, reward, sampling, threads
from .lexicon import Lexicon
from .proxy_spec import ProxySpec

PAIRS_FILE = "pairs.jsonl"
META_FILE = "meta.json"
TRAIN_DIR, EVAL_DIR = "train", "eval"


def random_prompt(rng: random.Random, spec: ProxySpec, tag: str) -> str:
    return " ".join([tag] + [rng.choice(reward.NEUTRAL) for _ in range(spec.prompt_neutral_words)])


def random_completion(rng: random.Random, spec: ProxySpec, tag: str) -> str:
    """Reference text: neutral words with prob `neutral_fraction`; otherwise the prompt's wanted
    class with a slight edge (`reference_bias`). The edge makes the reference attend to the tag
    (a base model that half-follows instructions) so preference tuning can sharpen it."""
    wanted = reward.WARM if reward.TAGS[tag] == "warm" else reward.COLD
    unwanted = reward.COLD if wanted is reward.WARM else reward.WARM
    class_share = 1.0 - spec.neutral_fraction
    p_wanted = class_share / 2 + spec.reference_bias
    words = []
    for _ in range(spec.completion_length):
        draw = rng.random()
        pool = reward.NEUTRAL if draw < spec.neutral_fraction else wanted if draw < spec.neutral_fraction + p_wanted else unwanted
        words.append(rng.choice(pool))
    return " ".join(words)


def train_reference(spec: ProxySpec, lexicon: Lexicon) -> tuple[torch.nn.Module, object]:
    """Supervised training of the tiny GPT-2 on synthetic prompt+completion text (in token names)."""
    torch.manual_seed(spec.seed)
    rng = random.Random(spec.seed)
    tokenizer = lm.build_tokenizer(lexicon.tokens())
    size = lm.TinyModelConfig(n_layer=spec.n_layer, n_embd=spec.n_embd, n_head=spec.n_head)
    model = lm.build_model(len(tokenizer), size, tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.sft_learning_rate)
    tags = list(reward.TAGS)
    model.train()
    for _ in range(spec.sft_steps):
        texts = []
        for _ in range(spec.sft_batch_size):
            tag = rng.choice(tags)
            text = f"{random_prompt(rng, spec, tag)} {random_completion(rng, spec, tag)}"
            texts.append(f"{lexicon.encode(text)} {tokenizer.eos_token}")
        batch = tokenizer(texts, return_tensors="pt")
        loss = model(input_ids=batch["input_ids"], labels=batch["input_ids"]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model, tokenizer, size


def make_pairs(model: torch.nn.Module, tokenizer, spec: ProxySpec, lexicon: Lexicon) -> list[dict[str, str]]:
    """Sample `samples_per_prompt` completions per prompt from the reference; the best and the
    worst by exact reward form a pair (a clear preference, as a labeller comparing several
    samples would give). Prompts whose samples all tie carry no preference and are skipped.
    Pairs are written in token names, as the candidate's tokenizer knows them."""
    rng = random.Random(spec.seed + 1)
    generator = torch.Generator().manual_seed(spec.seed + 2)
    tags = list(reward.TAGS)
    pairs: list[dict[str, str]] = []
    while len(pairs) < spec.n_pairs:
        prompts = [random_prompt(rng, spec, tags[i % 2]) for i in range(256)]
        prompt_ids = tokenizer([lexicon.encode(prompt) for prompt in prompts], return_tensors="pt")["input_ids"]
        samples = [
            sampling.sample(model, prompt_ids, spec.completion_length, generator, tokenizer.all_special_ids)
            for _ in range(spec.samples_per_prompt)
        ]
        for row, prompt in enumerate(prompts):
            texts = [lexicon.decode(tokenizer.decode(batch[row])) for batch in samples]
            scored = sorted(texts, key=lambda text: reward.reward(prompt, text, spec.completion_length))
            worst, best = scored[0], scored[-1]
            if reward.reward(prompt, best, spec.completion_length) == reward.reward(prompt, worst, spec.completion_length):
                continue
            pairs.append({"prompt": lexicon.encode(prompt), "chosen": " " + lexicon.encode(best),
                          "rejected": " " + lexicon.encode(worst)})
            if len(pairs) == spec.n_pairs:
                break
    return pairs


def build(out_dir: Path, spec: ProxySpec, vocabulary_key: bytes) -> None:
    threads.configure_torch()
    train_dir, eval_dir = out_dir / TRAIN_DIR, out_dir / EVAL_DIR
    eval_dir.mkdir(parents=True)
    lexicon = Lexicon.keyed(reward.vocabulary(), vocabulary_key)
    model, tokenizer, size = train_reference(spec, lexicon)
    lm.save_reference(train_dir, model, tokenizer, size)
    pairs = make_pairs(model, tokenizer, spec, lexicon)
    with (train_dir / PAIRS_FILE).open("w") as handle:
        for pair in pairs:
            handle.write(json.dumps(pair) + "\n")
    lexicon.save(eval_dir)
    (eval_dir / META_FILE).write_text(json.dumps({"spec": asdict(spec), "pairs": len(pairs)}))


if __name__ == "__main__":
    build(Path(sys.argv[1]), ProxySpec(**json.loads(sys.argv[2])), bytes.fromhex(sys.argv[3]))
