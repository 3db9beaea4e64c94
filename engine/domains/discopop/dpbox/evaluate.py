"""Entry point of the evaluation container (task image: no candidate code inside).

`python -m dpbox.evaluate '<json>'` with the reference artifact at `reference_dir` (its train/
part: tokenizer and reference weights; its eval/ part at `eval_dir`: the word <-> token mapping,
never mounted into a candidate) and the candidate's trained weights at `weights_dir` (all
read-only). For each run key it samples completions for a fixed, seeded prompt set (the seed
comes in the request, never through a candidate's /in) and reports the mean exact reward and
the mean sequence KL to the reference. Raw numbers only: the engine turns them into a fitness.
"""

from __future__ import annotations

from . import env  # noqa: F401  (must precede the HF imports)

import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch

from . import lm, reward, sampling, threads
from .lexicon import Lexicon
from .protocol import ModelKind
from .proxy_spec import ProxySpec
from .reference import random_prompt

RESULT_FILE = "eval.json"


def eval_prompts(spec: ProxySpec) -> list[str]:
    """The same prompts for every candidate: half want warm words, half cold."""
    rng = random.Random(spec.eval_seed)
    tags = list(reward.TAGS)
    return [random_prompt(rng, spec, tags[i % 2]) for i in range(spec.eval_prompts)]


def score_policy(policy, reference, tokenizer, prompts: list[str], spec: ProxySpec, lexicon: Lexicon) -> dict[str, float]:
    generator = torch.Generator().manual_seed(spec.eval_seed)
    prompt_ids = tokenizer([lexicon.encode(prompt) for prompt in prompts], return_tensors="pt")["input_ids"]
    banned = tokenizer.all_special_ids
    completions = sampling.sample(policy, prompt_ids, spec.completion_length, generator, banned)
    kl = sampling.sequence_kl(policy, reference, prompt_ids, completions, banned)
    rewards = [reward.reward(prompt, lexicon.decode(tokenizer.decode(ids)), spec.completion_length)
               for prompt, ids in zip(prompts, completions)]
    return {
        "reward": statistics.fmean(rewards),
        "reward_sd": statistics.pstdev(rewards),
        "kl": float(kl.mean()),
        "kl_sd": float(kl.std()),
        "n": len(rewards),
    }


def evaluate_proxy(reference_dir: Path, eval_dir: Path, weights_dir: Path, keys: list[str], spec: ProxySpec) -> dict:
    reference, tokenizer = lm.load_reference(reference_dir)
    reference.eval()
    lexicon = Lexicon.load(eval_dir)
    prompts = eval_prompts(spec)
    scores = {"reference": score_policy(reference, reference, tokenizer, prompts, spec, lexicon)}
    policy, _ = lm.load_reference(reference_dir)
    policy.eval()
    for key in keys:
        path = weights_dir / f"{key}.safetensors"
        if not path.is_file():
            scores[key] = {"error": "no weights"}
            continue
        try:
            lm.load_weights(policy, path)
            scores[key] = score_policy(policy, reference, tokenizer, prompts, spec, lexicon)
        except Exception as error:  # malformed or NaN weights: the candidate's policy, not us
            scores[key] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"}
    return scores


def main(request: dict) -> None:
    started = time.perf_counter()
    threads.configure_torch()
    out = Path(request["out_dir"])
    if ModelKind(request["kind"]) is ModelKind.PROXY:
        scores = evaluate_proxy(Path(request["reference_dir"]), Path(request["eval_dir"]), Path(request["weights_dir"]),
                                request["keys"], ProxySpec(**request["proxy"]))
    else:
        from . import hf_eval

        scores = hf_eval.evaluate(request)
    result = {"scores": scores, "seconds": round(time.perf_counter() - started, 3)}
    (out / RESULT_FILE).write_text(json.dumps(result))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
