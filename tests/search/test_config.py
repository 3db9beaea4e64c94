from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.config import ConfigError, RunConfig, load_config
from engine.search.rundir import load_saved_config, save_config
from tests.third_domain.domain import ToyConfig


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_defaults_and_tables_load(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, """
[search]
generations = 3
eval_slots = 2
[llm.meta]
base_url = "http://127.0.0.1:1/v1"
model = "m"
temperature = 0.5
max_tokens = 100
[sandbox]
memory_bytes = "2g"
[domain]
xs = [1.0]
"""))
    assert config.search.generations == 3 and config.search.reflection_rounds == 2
    assert config.search.repair_rounds == 3
    assert config.sandbox.memory_bytes == 2 * 1024**3
    assert config.domain_config(ToyConfig).xs == [1.0]  # type: ignore[attr-defined]


def test_unknown_key_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"search\.generatoins: unknown key"):
        load_config(_write(tmp_path, "[search]\ngeneratoins = 3\n"))
    with pytest.raises(ConfigError, match=r"llm\.meta\.temprature: unknown key"):
        load_config(_write(tmp_path, "[llm.meta]\ntemprature = 1\ntemperature = 1\nmax_tokens = 5\n"))
    with pytest.raises(ConfigError, match=r"surch: unknown key"):
        load_config(_write(tmp_path, "[surch]\n"))


def test_bad_values_name_their_path_and_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, '[search]\ngenerations = -1\neval_slots = "many"\n[sandbox]\nmemory_bytes = "lots"\n'))
    message = str(info.value)
    assert "search.generations: Input should be greater than or equal to 0 (got -1)" in message
    assert "search.eval_slots:" in message and "'many'" in message
    assert "sandbox.memory_bytes:" in message


def test_domain_table_is_validated_by_the_domain_model() -> None:
    config = RunConfig(domain={"xs": "nope", "extra": 1})
    with pytest.raises(ConfigError) as info:
        config.domain_config(ToyConfig)
    assert "domain.xs:" in str(info.value) and "domain.extra: unknown key" in str(info.value)


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[search\n"))


def test_overrides_win_and_the_resolved_config_round_trips(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "[search]\ngenerations = 3\n"),
                         {"search.generations": 7, "llm.meta.model": "x", "llm.meta.base_url": None})
    assert config.search.generations == 7 and config.llm.meta.model == "x"
    save_config(config, tmp_path)
    assert load_saved_config(tmp_path) == config
    assert load_saved_config(tmp_path, {"search.generations": 9}).search.generations == 9


def test_cli_reports_config_errors_with_exit_code_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["search", "tests.third_domain.domain:ToyDomain", "--config",
                                      str(_write(tmp_path, "[search]\nbogus = 1\n"))])
    assert result.exit_code == 2
    assert "search.bogus: unknown key" in result.output


def test_cli_rejects_unknown_domain(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["search", "nosuchdomain"])
    assert result.exit_code == 2 and "unknown domain 'nosuchdomain'" in result.output
