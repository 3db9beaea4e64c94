"""ADAS benchmarks: loaders (hub id or local path), the paper's splits, metrics and fitness.

Tasks carry their gold answers; only `Task.public()` is ever sent into a candidate's container.
"""

from engine.domains.adas.benchmarks.bootstrap import BootstrapResult, bootstrap_fitness
from engine.domains.adas.benchmarks.registry import Benchmark, Split, load_tasks, spec_for
from engine.domains.adas.benchmarks.task import Task

__all__ = ["Benchmark", "BootstrapResult", "Split", "Task", "bootstrap_fitness", "load_tasks", "spec_for"]
