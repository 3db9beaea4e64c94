"""Atomic writes: concurrent writers of one file (the baseline cache is shared by every run on
the machine) never fail and never leave a torn file or a temp file behind."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from engine.atomic import write_json_atomic


def test_concurrent_writers_of_one_path_all_succeed(tmp_path: Path) -> None:
    target = tmp_path / "entry.json"
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            for round_ in range(60):
                write_json_atomic(target, {"writer": number, "round": round_, "pad": "x" * 4096})
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert json.loads(target.read_text())["round"] == 59
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]
