"""Runs the in-container harness as a subprocess on the host, against a ScriptedLLM.

The box files are laid out as in the candidate image (adas_box/, agent.py); `evobox_llm.py` is
the real gateway client pointed at the scripted server over loopback HTTP. The Docker tests
exercise the real gateway and container.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from engine.domains.adas.evaluation import box_files
from engine.llm import box_client

# The real client, pointed at the scripted server over loopback HTTP, without retries.
LOOPBACK_CLIENT = Path(box_client.__file__).read_text() + '''
BASE_URL = os.environ["ADAS_TEST_BASE_URL"]
RETRIES = 0
def _transport():
    return httpx.HTTPTransport()
'''

SETTINGS = {"answer_hint": "Your answer: ONLY the final number.", "benchmark": "mgsm", "max_tokens": 256,
            "threads": 2, "question_timeout_s": 20, "deadline_s": 60, "selftest_questions": 2,
            "selftest_timeout_s": 5}


def run_harness(tmp: Path, mode: str, code: str, questions: list[dict[str, Any]], base_url: str = "",
                **settings: Any) -> dict[str, Any]:
    root, in_dir, out_dir = tmp / "opt", tmp / "in", tmp / "out"
    for folder in (root, in_dir, out_dir):
        folder.mkdir(parents=True, exist_ok=True)
    for relpath, data in box_files(code).items():
        target = root / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (root / "evobox_llm.py").write_text(LOOPBACK_CLIENT)
    (in_dir / "config.json").write_text(json.dumps({**SETTINGS, **settings}))
    (in_dir / "questions.json").write_text(json.dumps(questions))
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(root), "ADAS_TEST_BASE_URL": base_url,
           "EVOBOX_LLM_TOKEN": "test", "EVOBOX_LLM_MODEL": "scripted"}
    proc = subprocess.run([sys.executable, "-m", "adas_box.harness", mode, "--in-dir", str(in_dir),
                           "--out-dir", str(out_dir)], env=env, cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    name = "selftest.json" if mode == "selftest" else "answers.json"
    return json.loads((out_dir / name).read_text())
