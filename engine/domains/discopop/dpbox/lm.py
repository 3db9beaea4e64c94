"""The proxy task's language model: a word-level tokenizer and a tiny GPT-2, built offline.

Shared by both images: the task image builds and trains the reference with it, the candidate
image loads the reference and trains from it, the evaluator loads trained weights into it.
Weights travel as safetensors (no pickle), so loading a candidate's output runs no code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<pad>", "<unk>", "<bos>", "<eos>"]
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "model.json"
WEIGHTS_FILE = "reference.safetensors"


@dataclass
class TinyModelConfig:
    """Size of the proxy policy; small enough to train thousands of steps per minute on 1 core."""

    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 2
    n_positions: int = 32


def build_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    """Word-level tokenizer over a fixed vocabulary (special tokens first)."""
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + words)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>", eos_token="<eos>"
    )


def build_model(vocab_size: int, size: TinyModelConfig, tokenizer: PreTrainedTokenizerFast) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 of the given size (dropout off: the proxy is deterministic)."""
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=size.n_positions,
        n_embd=size.n_embd,
        n_layer=size.n_layer,
        n_head=size.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config)


def save_reference(directory: Path, model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, size: TinyModelConfig) -> None:
    """Write tokenizer, size and weights: everything needed to rebuild the model offline."""
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.backend_tokenizer.save(str(directory / TOKENIZER_FILE))
    (directory / CONFIG_FILE).write_text(json.dumps(asdict(size)))
    save_weights(model, directory / WEIGHTS_FILE)


def load_tokenizer(directory: Path) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_file=str(directory / TOKENIZER_FILE),
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<bos>",
        eos_token="<eos>",
    )


def load_reference(directory: Path) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    """The reference policy and its tokenizer from an artifact directory."""
    tokenizer = load_tokenizer(directory)
    size = TinyModelConfig(**json.loads((directory / CONFIG_FILE).read_text()))
    model = build_model(len(tokenizer), size, tokenizer)
    load_weights(model, directory / WEIGHTS_FILE)
    return model, tokenizer


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """Contiguous, de-aliased copy (GPT-2 ties lm_head to wte; safetensors refuses shared storage)."""
    state = {name: tensor.detach().contiguous().clone() for name, tensor in model.state_dict().items() if name != "lm_head.weight"}
    save_file(state, str(path))


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Load weights strictly: a file with missing, extra or mis-shaped tensors is rejected."""
    state = load_file(str(path))
    expected = {name: tensor.shape for name, tensor in model.state_dict().items() if name != "lm_head.weight"}
    got = {name: tensor.shape for name, tensor in state.items()}
    if expected != got:
        raise ValueError(f"weights in {path.name} do not match the model ({len(got)} tensors, expected {len(expected)})")
    model.load_state_dict(state, strict=False)
    model.tie_weights()
