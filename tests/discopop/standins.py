"""Tiny stand-ins for the GPU settings, written inside a DiscoPOP runtime container.

Run as `python /opt/evobox/standins.py /out`: a 2-layer GPT-2 policy with a word-level
tokenizer and a chat template (save_pretrained dir), a GPT-2 sequence classifier with
NEGATIVE/POSITIVE labels, a preference jsonl and an MT-Bench-style question jsonl. They stand
in for lvwerra/gpt2-imdb, siebert/sentiment-roberta-large-english, the preference sets and the
MT-Bench questions, so the GPU code path runs on CPU in seconds.
"""

import json
import random
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel, PreTrainedTokenizerFast

WORDS = "the a film movie was is great bad awful good fine plot acting and but very not really it this".split()
TEMPLATE = "{% for m in messages %}{{ m['content'] }} {% endfor %}{% if add_generation_prompt %}answer {% endif %}"


def tokenizer() -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<eos>", "answer"] + WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>")
    tok.chat_template = TEMPLATE
    return tok


def main(out: Path) -> None:
    torch.manual_seed(0)
    rng = random.Random(0)
    tok = tokenizer()
    config = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(out / "policy")
    tok.save_pretrained(out / "policy")
    classifier = GPT2ForSequenceClassification(GPT2Config(**{**config.to_dict(), "num_labels": 2,
                                                             "id2label": {0: "NEGATIVE", 1: "POSITIVE"},
                                                             "label2id": {"NEGATIVE": 0, "POSITIVE": 1}}))
    classifier.save_pretrained(out / "reward")
    tok.save_pretrained(out / "reward")
    (out / "data").mkdir()
    with (out / "data" / "pairs.jsonl").open("w") as handle:
        for _ in range(48):
            prompt = " ".join(rng.choice(WORDS) for _ in range(3))
            handle.write(json.dumps({"prompt": prompt, "chosen": " great good fine", "rejected": " bad awful bad"}) + "\n")
    with (out / "questions.jsonl").open("w") as handle:
        for question in ("was the film good", "was the plot bad", "is this movie great"):
            handle.write(json.dumps({"prompt": [{"role": "user", "content": question}]}) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
