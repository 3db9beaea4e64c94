"""Where benchmark data comes from: a local path (offline default) or a Hugging Face hub id."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[4]  # engine/domains/adas/benchmarks/data.py
DATA_ENV = "EVOBOX_DATA_DIR"


class DataError(Exception):
    """A dataset could not be found or read (missing file, unknown hub id, bad format)."""


def data_root(override: str | Path | None = None) -> Path:
    """The offline data directory: explicit override > $EVOBOX_DATA_DIR > ../shared/data/adas."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return (REPO_ROOT / ".." / "shared" / "data" / "adas").resolve()


def is_local(source: str | Path) -> bool:
    """A source is local when it names an existing path; anything else is taken as a hub id."""
    return Path(source).expanduser().exists()


def hub_rows(dataset_id: str, *, name: str | None = None, split: str) -> list[dict[str, Any]]:
    """Rows of a hub dataset. Needs the optional `datasets` package and network access."""
    try:
        import datasets  # noqa: PLC0415  (optional, heavy: only for hub ids)
    except ImportError as exc:
        raise DataError(f"{dataset_id!r} is not a local path, and loading hub ids needs `pip install datasets`") from exc
    try:
        return [dict(row) for row in datasets.load_dataset(dataset_id, name, split=split)]
    except Exception as exc:  # datasets raises many unrelated types; report them as one
        raise DataError(f"cannot load hub dataset {dataset_id!r} ({name}, {split}): {exc}") from exc

