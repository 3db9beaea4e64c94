"""Names, labels and log files of everything a run creates on the Docker engine, derived in one place.

`ContainerSpec` (from `Sandbox.work(stage, candidate_id)`) is the one source of a piece of
work's identity: every domain gets its container names, its labels and where its logs go from
it, so no domain writes a label or a log name of its own.

A container's name is `evobox-<run>-<candidate>-<stage>-<random>`: readable in `docker ps`,
and never the same twice, so a resumed run never meets a 409 name conflict with a container its
dead predecessor left. Labels, not names, are what the engine acts on: `evobox.run`,
`evobox.candidate`, `evobox.stage` and the owner process (owner.py), which the reaper reads.
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from engine.sandbox.owner import Owner

RUN_LABEL = "evobox.run"
CANDIDATE_LABEL = "evobox.candidate"
STAGE_LABEL = "evobox.stage"
ARTIFACT_LABEL = "evobox.artifact"  # what a shared-artifact container builds (e.g. "reference")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class Stage(str, enum.Enum):
    """What a container (or image) is for."""

    BUILD = "build"  # a candidate image
    SELFTEST = "selftest"  # unit tests inside the candidate's container
    EVALUATE = "evaluate"  # the candidate's own evaluation run (ADAS agents)
    TRAIN = "train"  # validity tests and training with the candidate's loss (DiscoPOP)
    SCORE = "score"  # scoring in a container without the candidate's code
    ARTIFACT = "artifact"  # shared inputs of a run (reference model, datasets)
    EXEC = "exec"  # anything else (`evobox sandbox exec`, tests)


@dataclass(frozen=True)
class ContainerSpec:
    """One piece of a run's work on the engine: its container name, its labels, its log files."""

    run_id: str
    owner: Owner
    stage: Stage = Stage.EXEC
    candidate_id: str | None = None

    def labels(self) -> dict[str, str]:
        labels = {RUN_LABEL: self.run_id, STAGE_LABEL: self.stage.value, **self.owner.labels()}
        if self.candidate_id is not None:
            labels[CANDIDATE_LABEL] = self.candidate_id
        return labels

    def container_name(self) -> str:
        parts = [self.run_id[:64], self.candidate_id[:24] if self.candidate_id else None, self.stage.value,
                 secrets.token_hex(4)]
        return _UNSAFE.sub("-", "-".join(["evobox", *(p for p in parts if p)]))

    def log_paths(self, directory: Path) -> tuple[Path, Path]:
        """Where the stdout and stderr tails of this stage's container are kept: one file each,
        `<stage>.stdout.log` and `<stage>.stderr.log`. Split, not combined: the runner captures
        two separately capped tails, and one file holding both would put every stderr line after
        every stdout line whatever the real order, and hide which stream said what."""
        return directory / f"{self.stage.value}.stdout.log", directory / f"{self.stage.value}.stderr.log"
