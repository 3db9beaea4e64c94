"""The one result reader against hostile result files: every case ends, through the domain kit's
mapping, as a CandidateFailure with a one-line reason, never another exception (which the loop would take for a broken environment
and stop the run on). Both domains' result models are fuzzed here, on real files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from engine.domains import kit
from engine.domains.adas.evaluation import AnswersReport, SelftestReport
from engine.domains.discopop.config import DiscoPopConfig, Setting
from engine.domains.discopop.domain import DiscoPopDomain
from engine.domains.discopop.results import EvalReport, TrainReport
from engine.sandbox import results
from engine.sandbox.results import MAX_DEPTH, json_depth_exceeds
from engine.search.candidate import CandidateFailure, Status

MODELS: list[type[BaseModel]] = [AnswersReport, SelftestReport, TrainReport, EvalReport]
CAP = 1 << 20


def read_result(out_dir: Path, name: str, model: type[BaseModel], **kwargs: Any) -> Any:
    """The sandbox's reader, its refusals mapped as every domain maps them (kit.result_files)."""
    with kit.result_files():
        return results.read_result(out_dir, name, model, **kwargs)


def _write(text: str | bytes) -> Callable[[Path], None]:
    data = text.encode() if isinstance(text, str) else text
    return lambda path: path.write_bytes(data)


def _deep(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


def _symlink(path: Path) -> None:
    target = path.parent.parent / "secret.json"
    target.write_text('{"ok": true, "answers": {}, "status": "ok", "scores": {}}')
    path.symlink_to(target)


HOSTILE: dict[str, Callable[[Path], None]] = {
    "missing": lambda path: None,
    "empty": _write(""),
    "not_json": _write("this is not json"),
    "binary": _write(b"\xff\xfe\x00\x01" * 64),
    "list_top_level": _write("[]"),
    "string_top_level": _write('"ok"'),
    "null": _write("null"),
    "empty_object": _write("{}"),
    "wrong_types": _write('{"ok": [1], "answers": 5, "status": 7, "scores": "all", "load_error": {}}'),
    "status_without_reason": _write('{"status": "nonsense"}'),
    "deep_100k": _write(_deep(100_000)),
    "deep_objects": _write('{"a":' * 50_000 + "1" + "}" * 50_000),
    "deep_inside_valid_keys": _write('{"ok": true, "answers": {"q": ' + _deep(10_000) + "}, "
                                     '"status": "ok", "scores": {"k": ' + _deep(10_000) + "}}"),
    "nan": _write('{"ok": true, "answers": {"q": NaN}, "status": "ok", "scores": {"k": {"reward": NaN}}}'),
    "infinity": _write('{"ok": true, "answers": {}, "status": "ok", "timings": {"x": Infinity},'
                       ' "scores": {"k": {"reward": -Infinity, "kl": 1}}}'),
    "huge_exponent": _write('{"ok": true, "answers": {}, "status": "ok", "timings": {"x": 1e999},'
                            ' "scores": {"k": {"reward": 1e999, "kl": 0}}}'),
    "huge_integer": _write('{"n": ' + "9" * 10_000 + "}"),
    "oversize": _write(b" " * (CAP + 1)),
    "symlink": _symlink,
    "fifo": lambda path: os.mkfifo(path),
    "directory": lambda path: path.mkdir(),
    "torn": _write('{"ok": true, "answers": {"q": {"answer": "4'),
}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_every_hostile_result_file_is_the_candidates_failure(tmp_path: Path, model: type[BaseModel], case: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    HOSTILE[case](out / "result.json")
    try:
        read_result(out, "result.json", model, max_bytes=CAP, what="evaluation")
    except CandidateFailure as failure:
        assert failure.status is Status.FAILED
        assert failure.reason.startswith("evaluation: ") and "\n" not in failure.reason
        assert len(failure.reason) <= 500
    # the rest may be valid for a lenient model; any other exception fails the test


@pytest.mark.parametrize("case", ["deep_100k", "deep_objects", "deep_inside_valid_keys", "nan", "infinity",
                                  "huge_exponent", "list_top_level", "wrong_types", "symlink", "fifo", "directory"])
def test_hostile_cases_are_refused_by_every_model(tmp_path: Path, case: str) -> None:
    for model in MODELS:
        out = tmp_path / model.__name__
        out.mkdir()
        HOSTILE[case](out / "result.json")
        with pytest.raises(CandidateFailure, match=r"^evaluation: "):
            read_result(out, "result.json", model, max_bytes=CAP, what="evaluation")


def test_a_missing_out_dir_is_the_candidates_failure(tmp_path: Path) -> None:
    with pytest.raises(CandidateFailure, match="unreadable"):
        read_result(tmp_path / "nowhere", "answers.json", AnswersReport, max_bytes=CAP, what="evaluation")


def test_depth_scan_ignores_brackets_inside_strings_and_escapes() -> None:
    text = '{"a": "' + "[" * 1000 + '\\"' + "{" * 1000 + '", "b": [[1]]}'
    assert not json_depth_exceeds(text.encode(), MAX_DEPTH)
    assert json_depth_exceeds(_deep(MAX_DEPTH + 1).encode(), MAX_DEPTH)
    assert not json_depth_exceeds(_deep(MAX_DEPTH).encode(), MAX_DEPTH)


def test_valid_results_are_read_into_their_models(tmp_path: Path) -> None:
    (tmp_path / "answers.json").write_text('{"load_error": null, "answers": {"q0": {"answer": [[1, 2]], "error": null}}}')
    report = read_result(tmp_path, "answers.json", AnswersReport, max_bytes=CAP, what="evaluation")
    assert report.answers == {"q0": {"answer": [[1, 2]], "error": None}}
    (tmp_path / "eval.json").write_text('{"scores": {"beta1_seed0": {"reward": 0.5, "kl": 1.0, "n": 8}}, "seconds": 1}')
    scores = read_result(tmp_path, "eval.json", EvalReport, max_bytes=CAP, what="evaluation").scores
    assert scores["beta1_seed0"].reward == 0.5


def test_a_judge_rating_off_the_scale_is_refused(tmp_path: Path) -> None:
    (tmp_path / "eval.json").write_text('{"scores": {"beta1_seed0": {"score": 1000, "kl": 0.1}}}')
    with pytest.raises(CandidateFailure, match="scores.beta1_seed0.score"):
        read_result(tmp_path, "eval.json", EvalReport, max_bytes=CAP, what="evaluation")


# ---- DiscoPOP's weights directory, as the candidate's container left it ------------------------

def _weights_proxy(train: Path) -> None:
    (train / "weights").mkdir()
    (train / "weights" / "beta1_seed0.safetensors").write_bytes(b"w")


WEIGHT_TREES: dict[str, Callable[[Path], None]] = {
    "no_weights_dir": lambda train: None,
    "weights_is_a_file": lambda train: (train / "weights").write_text("x"),
    "weights_is_a_symlink": lambda train: (train / "weights").symlink_to("/etc"),
    "weights_file_missing": lambda train: (train / "weights").mkdir(),
    "weights_file_symlink": lambda train: ((train / "weights").mkdir(),
                                           (train / "weights" / "beta1_seed0.safetensors").symlink_to("/etc/passwd")),
    "weights_file_fifo": lambda train: ((train / "weights").mkdir(),
                                        os.mkfifo(train / "weights" / "beta1_seed0.safetensors")),
    "weights_file_directory": lambda train: (train / "weights" / "beta1_seed0.safetensors").mkdir(parents=True),
}


@pytest.mark.parametrize("setting", [Setting.PROXY, Setting.IMDB])
@pytest.mark.parametrize("case", sorted(WEIGHT_TREES))
def test_hostile_weights_trees_are_the_candidates_failure(tmp_path: Path, case: str, setting: Setting) -> None:
    domain = DiscoPopDomain(DiscoPopConfig(betas=[1.0], seeds=[0], setting=setting))
    train = tmp_path / "train"
    train.mkdir()
    WEIGHT_TREES[case](train)
    if setting is Setting.IMDB and case.startswith("weights_file"):  # HF layout: weights/<key>/<files>
        return
    with pytest.raises(CandidateFailure) as failure:
        domain._collect_weights(train, tmp_path / "copied")
    assert failure.value.reason.startswith("trained weights: ") and "\n" not in failure.value.reason


def test_hf_weights_directory_lists_only_plain_files(tmp_path: Path) -> None:
    domain = DiscoPopDomain(DiscoPopConfig(betas=[1.0], seeds=[0], setting=Setting.IMDB))
    key_dir = tmp_path / "train" / "weights" / "beta1_seed0"
    key_dir.mkdir(parents=True)
    (key_dir / "config.json").write_text("{}")
    (key_dir / "leak").symlink_to("/etc/passwd")
    os.mkfifo(key_dir / "pipe")
    copied = domain._collect_weights(tmp_path / "train", tmp_path / "copied")
    assert sorted(p.name for p in (copied / "beta1_seed0").iterdir()) == ["config.json"]
