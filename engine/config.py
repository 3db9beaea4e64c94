"""The run configuration: one TOML file with tables [search], [llm], [sandbox], [executor] and [domain].

Each table is the typed config of its component; unknown keys and bad values are errors that
name the key path (e.g. `search.generations: Input should be greater than or equal to 0`).
The [domain] table is validated by the chosen domain's `config_model` once the domain is known.
"""

from __future__ import annotations

import enum
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.llm.config import LLMConfig
from engine.sandbox.limits import SandboxLimits, parse_size


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem with its key path."""


class SearchConfig(BaseModel):
    """The [search] table: shape and budgets of the discovery loop."""

    model_config = ConfigDict(extra="forbid")

    generations: int = Field(10, ge=0, description="Generations after the baselines.")
    candidates_per_generation: int = Field(1, ge=1, description="Candidates proposed per generation.")
    reflection_rounds: int = Field(2, ge=0, description="Self-reflection turns after each proposal.")
    repair_rounds: int = Field(3, ge=0, description="Repairs after a failure, each shown the error.")
    eval_slots: int = Field(1, ge=1, description="Candidates evaluated in parallel.")
    wall_time_s: float | None = Field(None, gt=0, description="Stop starting work after this many seconds.")
    archive_prompt_chars: int = Field(60_000, ge=1_000, description="Cap on the archive text in a prompt.")
    max_code_chars: int = Field(100_000, ge=100, description="Longer proposed code is refused unread.")
    seed: int = Field(0, description="Base of the per-candidate sampling seed sent to the LLM.")


class ExecutorKind(str, enum.Enum):
    """Where the loop's evaluations run: `local` (this process, this machine's Docker engine, the
    default) or `ray` (a node of a Ray cluster, engine/cluster/README.md). Plain pydantic here, no
    Ray import: the config loads without Ray installed."""

    LOCAL = "local"
    RAY = "ray"


class ExecutorConfig(BaseModel):
    """How evaluations are placed. The resource fields are what one evaluation asks of a Ray
    node; unset, they follow the run's [sandbox] limits (cpus, memory_bytes, gpus)."""

    model_config = ConfigDict(extra="forbid")

    kind: ExecutorKind = Field(ExecutorKind.LOCAL, description="local: this machine; ray: a Ray cluster.")
    address: str | None = Field(None, description="Ray cluster address (HOST:PORT of `ray start --head`); "
                                "None: RAY_ADDRESS or the local cluster.")
    num_cpus: float | None = Field(None, ge=0, description="CPUs one evaluation reserves on its node.")
    num_gpus: float | None = Field(None, ge=0, description="GPUs one evaluation reserves on its node.")
    memory_bytes: int | None = Field(None, ge=0, description="Memory one evaluation reserves on its node.")
    resources: dict[str, float] = Field(default_factory=dict, description="Custom Ray resources one evaluation "
                                        "asks for (e.g. {gpu_box = 1} to use only nodes started with that resource).")
    placement_timeout_s: float = Field(600.0, gt=0, description="Wait for a node with free resources; then "
                                       "the evaluation fails as an infrastructure error (retried, then pending).")
    wire_max_bytes: int = Field(parse_size("256m"), ge=1024, description="Largest /in or /out tree shipped "
                                "between the head and a node for one container run.")
    mount_max_bytes: int = Field(parse_size("8g"), ge=1024, description="Largest read-only input directory "
                                 "(reference models, data) shipped once to each node, by content hash.")


class RunConfig(BaseModel):
    """The whole run configuration; `domain` stays raw until the domain validates it."""

    model_config = ConfigDict(extra="forbid")

    search: SearchConfig = Field(default_factory=SearchConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    sandbox: SandboxLimits = Field(default_factory=SandboxLimits)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    domain: dict[str, Any] = Field(default_factory=dict)

    def domain_config(self, model: type[BaseModel]) -> BaseModel:
        """The [domain] table validated by the domain's own model."""
        try:
            return model.model_validate(self.domain)
        except ValidationError as exc:
            raise ConfigError(format_errors(exc, prefix="domain.")) from None


def format_errors(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem, each starting with the dotted key path."""
    lines = []
    for error in exc.errors():
        path = prefix + ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown key")
        else:
            shown = repr(error.get("input"))
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            lines.append(f"{path}: {error['msg']} (got {shown})")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def read_toml(path: Path) -> dict[str, Any]:
    """The raw tables of a TOML file, with a ConfigError naming the file on a syntax error."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set `a.b.c` in nested dicts, creating tables on the way (CLI overrides)."""
    *tables, leaf = key.split(".")
    node = raw
    for table in tables:
        node = node.setdefault(table, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{key}: {table} is not a table")
    node[leaf] = value


def build_config(raw: dict[str, Any], overrides: dict[str, Any] | None = None) -> RunConfig:
    """Validate raw tables, then apply dotted overrides on top of the resolved values (so
    `--model` works without an [llm.meta] table); None overrides are ignored."""
    config = _validate(raw)
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    if not given:
        return config
    resolved = config.model_dump(mode="json")
    for key, value in given.items():
        set_dotted(resolved, key, value)
    return _validate(resolved)


def _validate(raw: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc)) from None


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The run config from a TOML file (or defaults) with CLI overrides applied."""
    return build_config(read_toml(path) if path else {}, overrides)
