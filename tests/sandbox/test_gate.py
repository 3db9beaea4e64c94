"""The static gate rejects code that can never be right, and lets ordinary candidates through."""

from __future__ import annotations

import pytest

from engine.sandbox.gate import GateError, check_code

LEGIT = [
    "def forward(self, taskInfo):\n    return taskInfo\n",
    "import json, math, random, re\nfrom collections import Counter\nx = json.dumps({'a': 1})\n",
    "class A:\n    def __init__(self):\n        self._cache = {}\n        super().__init__()\n",
    "import torch\nimport torch.nn.functional as F\n\ndef loss(a, b, c, d, beta):\n    return -F.logsigmoid(beta * ((a - c) - (b - d)))\n",
    "from concurrent.futures import ThreadPoolExecutor\nimport os\nprint(os.path.join('a', 'b'), os.environ.get('X'))\n",
    "name = type(self).__name__\n",
]

HOSTILE = {
    "import subprocess\n": "subprocess",
    "import socket as s\n": "socket",
    "from ctypes import CDLL\n": "ctypes",
    "import os\nos.system('id')\n": "os.system",
    "from os import popen\n": "os.popen",
    "import os\nos.execv('/bin/sh', ['sh'])\n": "os.execv",
    "eval('1+1')\n": "eval",
    "exec(code)\n": "exec",
    "__import__('os')\n": "__import__",
    "().__class__.__bases__[0].__subclasses__()\n": "__subclasses__",
    "f.__globals__['os']\n": "__globals__",
    "getattr(x, '__dict__')\n": "dunder",
    "import importlib\nimportlib.import_module('socket')\n": "importlib",
    "import urllib.request\n": "urllib",
    "import sys\nframe = sys._getframe(1)\n": "_getframe",
    "def f(:\n": "syntax error",
}


@pytest.mark.parametrize("code", LEGIT)
def test_ordinary_candidate_code_passes(code: str) -> None:
    check_code(code)


@pytest.mark.parametrize(("code", "needle"), list(HOSTILE.items()))
def test_hostile_code_is_rejected_with_a_one_line_reason(code: str, needle: str) -> None:
    with pytest.raises(GateError) as info:
        check_code(code)
    reason = info.value.reason
    assert needle in reason and "\n" not in reason and reason.startswith(("line ", "syntax error"))
