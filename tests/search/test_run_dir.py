"""A run directory belongs to one search: another domain, another [domain] table or a second
process are refused before anything starts."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from engine.config import ConfigError, ExecutorConfig, ExecutorKind
from engine.search.rundir import RunDirError, save_config
from engine.search.runner import run_search
from engine.search.stop import Stopper, StopReason
from tests.search.conftest import toy_config
from tests.third_domain.domain import ToyDomain

DOMAIN = "tests.third_domain.domain:ToyDomain"


def _existing_run(tmp_path: Path, domain_table: dict) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"domain": DOMAIN}))
    save_config(toy_config("http://127.0.0.1:9/v1", domain=domain_table), run_dir)
    return run_dir


def test_rerun_with_another_domain_table_is_refused(tmp_path: Path) -> None:
    run_dir = _existing_run(tmp_path, {"xs": [1.0, 2.0], "mode": "inprocess", "eval_delay_s": 0.0})
    with pytest.raises(ConfigError, match=r"\[domain\] table differs"):
        run_search(DOMAIN, ToyDomain, toy_config("http://127.0.0.1:9/v1", domain={"xs": [5.0]}), run_dir,
                   stopper=Stopper())


def test_rerun_with_another_domain_is_refused(tmp_path: Path) -> None:
    run_dir = _existing_run(tmp_path, {})
    (run_dir / "run.json").write_text(json.dumps({"domain": "adas"}))
    with pytest.raises(RunDirError, match="holds a 'adas' run"):
        run_search(DOMAIN, ToyDomain, toy_config("http://127.0.0.1:9/v1"), run_dir, stopper=Stopper())


def test_second_process_on_a_run_dir_is_refused(tmp_path: Path) -> None:
    run_dir = _existing_run(tmp_path, {"xs": [-2.0, -1.0, 0.0, 1.0, 3.0], "mode": "inprocess", "eval_delay_s": 0.0})
    fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process's lock: flock is per open file description
    try:
        with pytest.raises(RunDirError, match="in use by another evobox process"):
            run_search(DOMAIN, ToyDomain, toy_config("http://127.0.0.1:9/v1"), run_dir, stopper=Stopper())
    finally:
        os.close(fd)


def test_a_refused_second_process_leaves_the_live_runs_config_alone(tmp_path: Path) -> None:
    table = {"xs": [-2.0, -1.0, 0.0, 1.0, 3.0], "mode": "inprocess", "eval_delay_s": 0.0}
    run_dir = _existing_run(tmp_path, table)
    before = (run_dir / "config.json").read_bytes()
    fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(RunDirError, match="in use by another evobox process"):
            run_search(DOMAIN, ToyDomain, toy_config("http://127.0.0.1:9/v1", search={"generations": 7}, domain=table),
                       run_dir, stopper=Stopper())
    finally:
        os.close(fd)
    assert (run_dir / "config.json").read_bytes() == before


def test_cli_shows_bracketed_config_errors_verbatim(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from engine.cli import app

    run_dir = _existing_run(tmp_path, {"xs": [1.0, 2.0], "mode": "inprocess", "eval_delay_s": 0.0})
    config = tmp_path / "other.toml"
    config.write_text('[domain]\nxs = [5.0]\n[llm.meta]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
                      "temperature = 0\nmax_tokens = 5\n")
    result = CliRunner().invoke(app, ["search", DOMAIN, "--config", str(config), "--run-dir", str(run_dir),
                                      "--no-progress"])
    assert result.exit_code == 2
    assert "the [domain] table differs" in result.output


def test_a_domain_setting_added_since_the_run_started_is_not_another_search(tmp_path: Path) -> None:
    """A run saved before a [domain] key existed resumes; the key takes its default."""
    from engine.search.rundir import CONFIG_NAME

    table = {"xs": [1.0, 2.0], "mode": "inprocess", "eval_delay_s": 0.0}
    run_dir = _existing_run(tmp_path, table)
    saved = json.loads((run_dir / CONFIG_NAME).read_text())
    saved["domain"] = {"xs": [1.0, 2.0]}  # written by a version whose ToyConfig had only xs
    (run_dir / CONFIG_NAME).write_text(json.dumps(saved))
    config = toy_config("http://127.0.0.1:9/v1", domain=table, search={"generations": 0})
    outcome = run_search(DOMAIN, ToyDomain, config, run_dir, stopper=Stopper(), write_report=False)
    assert outcome.reason is StopReason.COMPLETED, outcome.detail  # not "[domain] table differs"


def test_a_cluster_executor_without_its_opener_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """engine.search never imports engine.cluster: a caller that hands no opener down gets a
    clear error for `[executor] kind = "ray"`, and the run directory stays untouched."""
    config = toy_config("http://127.0.0.1:9/v1").model_copy(update={"executor": ExecutorConfig(kind=ExecutorKind.RAY)})
    with pytest.raises(ConfigError, match="executor.kind = 'ray'"):
        run_search(DOMAIN, ToyDomain, config, tmp_path / "run", stopper=Stopper())
    assert not (tmp_path / "run").exists()
