"""The [executor] table: where the loop's evaluations run.

`local` (the default) evaluates in this process with this machine's Docker engine, as always.
`ray` hands each evaluation to a node of a Ray cluster (engine/cluster/README.md). Plain
pydantic, no Ray import: the config loads without Ray installed.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field

from engine.sandbox.limits import parse_size


class ExecutorKind(str, enum.Enum):
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
