"""Evaluation of the GPU settings (task image, no candidate code): generate from each trained
policy, then score with a reward classifier (IMDb setting) or an LLM judge (judge setting),
and measure the KL to the reference along the generated tokens.

Request keys: reference_dir, weights_dir (one save_pretrained dir per run key), keys, prompts
(jsonl path), setting, reward_dir / reward_label, max_new_tokens, batch_size, seed, bf16.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from .protocol import Setting


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _prompt_text(tokenizer, prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


def _question(prompt) -> str:
    return prompt if isinstance(prompt, str) else prompt[-1]["content"]


@torch.no_grad()
def generate(model, tokenizer, texts: list[str], request: dict) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Sampled continuations (left-padded prompts); returns (sequences, completion mask, prompt width)."""
    tokenizer.padding_side = "left"
    batch = tokenizer(texts, return_tensors="pt", padding=True).to(model.device)
    torch.manual_seed(request["seed"])
    sequences = model.generate(**batch, do_sample=True, top_k=0, top_p=1.0, max_new_tokens=request["max_new_tokens"],
                               pad_token_id=tokenizer.pad_token_id)
    width = batch["input_ids"].shape[1]
    completion = sequences[:, width:]
    is_eos = (completion == tokenizer.eos_token_id).long()
    mask = ((is_eos.cumsum(dim=1) - is_eos) == 0).long()  # up to and including the first eos
    return sequences, mask, width


@torch.no_grad()
def token_kl(policy, reference, sequences: torch.Tensor, mask: torch.Tensor, width: int, pad_id: int) -> torch.Tensor:
    """Per sequence: sum over generated tokens of the exact KL(policy || reference) of next-token distributions."""
    attention = (sequences != pad_id).long()
    attention[:, width:] = 1
    stop = sequences.shape[1] - 1
    p = torch.log_softmax(policy(input_ids=sequences, attention_mask=attention).logits[:, width - 1 : stop].float(), -1)
    q = torch.log_softmax(reference(input_ids=sequences, attention_mask=attention).logits[:, width - 1 : stop].float(), -1)
    return ((p.exp() * (p - q)).sum(-1) * mask).sum(-1).cpu()


class RewardModel:
    def __init__(self, directory: Path, label: str):
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        self.model = AutoModelForSequenceClassification.from_pretrained(directory).to(_device()).eval()
        labels = {name.upper(): index for index, name in self.model.config.id2label.items()}
        self.index = labels.get(label.upper(), self.model.config.num_labels - 1)

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> list[float]:
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True).to(self.model.device)
        return torch.softmax(self.model(**batch).logits.float(), -1)[:, self.index].cpu().tolist()


def score_policy(policy, reference, tokenizer, prompts: list, request: dict, reward: RewardModel | None) -> dict:
    rewards, kls, grades, unreadable = [], [], [], 0
    size = request["batch_size"]
    for start in range(0, len(prompts), size):
        chunk = prompts[start : start + size]
        texts = [_prompt_text(tokenizer, p) for p in chunk]
        sequences, mask, width = generate(policy, tokenizer, texts, request)
        kls += token_kl(policy, reference, sequences, mask, width, tokenizer.pad_token_id).tolist()
        answers = [tokenizer.decode(row[: int(m.sum())], skip_special_tokens=True) for row, m in zip(sequences[:, width:], mask)]
        if reward is not None:
            rewards += reward([t + a for t, a in zip(texts, answers)])
        else:
            from .judge import grade

            for prompt, answer in zip(chunk, answers):
                rating = grade(_question(prompt), answer)
                unreadable += rating is None
                if rating is not None:
                    grades.append(rating)
    result = {"kl": statistics.fmean(kls), "n": len(kls)}
    if reward is not None:
        result.update(reward=statistics.fmean(rewards), reward_sd=statistics.pstdev(rewards))
    else:
        if not grades:
            return {"error": "the judge gave no readable rating"}
        result.update(score=statistics.fmean(grades), unreadable=unreadable)
    return result


def evaluate(request: dict) -> dict:
    dtype = torch.bfloat16 if request.get("bf16") else torch.float32
    reference_dir = Path(request["reference_dir"])
    tokenizer = AutoTokenizer.from_pretrained(reference_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    reference = AutoModelForCausalLM.from_pretrained(reference_dir, dtype=dtype).to(_device()).eval()
    prompts = [json.loads(line)["prompt"] for line in Path(request["prompts"]).read_text().splitlines() if line.strip()]
    reward = RewardModel(Path(request["reward_dir"]), request["reward_label"]) if Setting(request["setting"]) is Setting.IMDB else None
    scores: dict = {}
    if reward is not None:
        scores["reference"] = score_policy(reference, reference, tokenizer, prompts, request, reward)
    for key in request["keys"]:
        directory = Path(request["weights_dir"]) / key
        if not (directory / "config.json").is_file():
            scores[key] = {"error": "no weights"}
            continue
        try:
            policy = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype, use_safetensors=True).to(_device()).eval()
            scores[key] = score_policy(policy, reference, tokenizer, prompts, request, reward)
            del policy
        except Exception as error:  # the trained policy is unusable (malformed safetensors included)
            scores[key] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"}
    return scores
