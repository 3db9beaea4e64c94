"""Baseline scores computed once per evaluation setting and reused by every later run.

Keyed by (domain name, Domain.evaluation_key(), code id): change the benchmark, the split or
the model and the key changes, so the baselines are evaluated again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import structlog

from engine.atomic import write_json_atomic
from engine.search.candidate import Evaluation

log = structlog.get_logger()


class BaselineCache:
    """Evaluations of baselines under one (domain, evaluation setting)."""

    def __init__(self, cache_dir: Path, domain_name: str, evaluation_key: str):
        setting = hashlib.sha256(evaluation_key.encode()).hexdigest()[:16]
        self.dir = cache_dir / "baselines" / domain_name / setting
        self._key = evaluation_key

    def get(self, code_id: str) -> Evaluation | None:
        path = self.dir / f"{code_id}.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("baseline_cache.unreadable", path=str(path), error=str(exc))
            return None
        if data.get("evaluation_key") != self._key:  # a hash collision or a hand-edited file
            return None
        return Evaluation(fitness=data["fitness"], fitness_text=data["fitness_text"], detail=data["detail"])

    def put(self, code_id: str, evaluation: Evaluation) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.dir / f"{code_id}.json", {
            "evaluation_key": self._key, "fitness": evaluation.fitness,
            "fitness_text": evaluation.fitness_text, "detail": evaluation.detail})
