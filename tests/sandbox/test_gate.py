"""The static gate rejects code that can never be right, and lets ordinary candidates through.

Hostile cases are grouped by class (aliasing a module, unlisted modules, the interpreter's
module table, string-built access, namespaces and dunders, dynamic code, files): each class
holds the trick first reported against the old AST gate plus variants of the same class.
"""

from __future__ import annotations

import pytest

from engine.domains.adas.baselines import BASELINES
from engine.domains.discopop.baselines import baselines as discopop_baselines
from engine.sandbox.gate import GateError, check_code

LEGIT = [
    "def forward(self, taskInfo):\n    return taskInfo\n",
    "import json, math, random, re\nfrom collections import Counter\nx = json.dumps({'a': 1})\n",
    "class A:\n    def __init__(self):\n        self._cache = {}\n        super().__init__()\n",
    "import torch\nimport torch.nn.functional as F\n\ndef loss(a, b, c, d, beta):\n    return -F.logsigmoid(beta * ((a - c) - (b - d)))\n",
    "from concurrent.futures import ThreadPoolExecutor\nimport os\nprint(os.path.join('a', 'b'), os.environ.get('X'))\n",
    "name = type(self).__name__\n",
    # ordinary Python the stock RestrictedPython policy refuses
    "class Counter:\n    def __init__(self):\n        self.n = 0\n        self._seen = {}\n"
    "    def add(self, k):\n        self.n += 1\n        self._seen[k] = self._seen.get(k, 0) + 1\n"
    "    def __len__(self):\n        return self.n\n    def __repr__(self):\n        return f'Counter({self.n})'\n",
    "from dataclasses import dataclass, field\nfrom typing import Any\n\n@dataclass\nclass Item:\n"
    "    name: str\n    tags: list[str] = field(default_factory=list)\n    extra: Any = None\n",
    "def outer():\n    total = 0\n    def inner(x):\n        nonlocal total\n        total += x\n    inner(2)\n    return total\n",
    "import itertools, functools, statistics\nfrom typing import Optional\n"
    "def f(xs: list[int]) -> Optional[float]:\n    pairs = [(a, b) for a, b in itertools.combinations(xs, 2) if a < b]\n"
    "    best = {k: v for k, v in zip('ab', xs)}\n    if (n := len(pairs)) > 0:\n        return statistics.mean(a * b for a, b in pairs) / n\n"
    "    return functools.reduce(lambda a, b: a + b, xs, 0.0)\n",
    "import sys\nsys.stdout.write('x\\n')\nsys.setrecursionlimit(5000)\nif __name__ == '__main__':\n    print('main')\n",
    "def forward(self, taskInfo):\n    out = getattr(taskInfo, 'content', '')\n    ok = hasattr(taskInfo, 'name')\n"
    "    with open('/tmp/notes.txt', 'w') as handle:\n        handle.write(str(out))\n    return out if ok else None\n",
    "import os.path as osp\nimport numpy as np\nimport torch\nroot = osp.join('a', 'b')\nx = np.array([[1, 2], [3, 4]])\ny = np.rot90(x).tolist()\n"
    "t = torch.tensor(y, dtype=torch.float32)\nm = torch.nn.Linear(2, 2)\nn = sum(1 for _ in m.modules())\n",
    "try:\n    value = int('x')\nexcept SystemExit as error:\n    value = error.code\nfinally:\n    pass\n",
]

# A paper-style ARC agent with numpy imported at the top (the debate and the other paper-style
# agents pass the gate in tests/adas/test_paper_agents.py).
PAPER_ARC_NUMPY = '''import numpy as np
from collections import Counter

def forward(self, taskInfo):
    examples = taskInfo.content if isinstance(taskInfo.content, dict) else {}
    coder = LLMAgentBase(['thinking', 'code'], 'Coding Agent', temperature=0.7)
    possible = []
    for attempt in range(3):
        thinking, code = coder([taskInfo], f"Write def transform(grid) (attempt {attempt + 1}).")
        feedback, correct_examples, wrong_examples = self.run_examples_and_get_feedback(code)
        possible.append((len(correct_examples), code))
    best_code = max(possible, key=lambda item: item[0])[1]
    answer = self.get_test_output_from_code(best_code)
    grid = np.array(answer.content if isinstance(answer.content, list) else [[0]])
    counts = Counter(int(v) for v in grid.flatten())
    if grid.ndim != 2 or not counts:
        grid = np.zeros((1, 1), dtype=int)
    return grid.astype(int).tolist()
'''

HOSTILE = {
    # the old gate's cases
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
    # a module under another name: an alias, a star import, a module passed around or reached as an attribute
    "import os as o\no.system('id')\n": "os.system",
    "from os import *\nsystem('id')\n": "import *",
    "import os\nx = os\nx.system('id')\n": "the module os may only be used as os.<name>",
    "import os\nrun = [os][0]\n": "the module os may only be used",
    "from os import path\nshell = path.os\n": "attribute os",
    "import os\nshell = os.path.os\n": "attribute os",
    "import os\ntable = os.sys.modules\n": "os.sys",
    "import torch\ntorch.multiprocessing.Process(target=print).start()\n": "attribute multiprocessing",
    "import numpy as np\nlib = np.ctypeslib\n": "attribute ctypeslib",
    "import os\nos.posix_spawn('/bin/sh', ['sh'], {})\n": "os.posix_spawn",
    "import os\nos.fork()\n": "os.fork",
    "import random\nshell = random._os\n": "attribute _os",
    "import logging\nframe = logging.currentframe()\n": "attribute currentframe",
    "import logging.config\n": "logging.config",
    # modules outside the allow-list, however they are spelled
    "import posix\nposix.system('id')\n": "import of posix",
    "import _socket\n": "import of _socket",
    "import timeit\ntimeit.timeit(\"print(1)\")\n": "import of timeit",
    "import pdb\n": "import of pdb",
    "import runpy\nrunpy.run_module('os')\n": "import of runpy",
    "import multiprocessing\n": "import of multiprocessing",
    "from multiprocessing import Pool\n": "import of multiprocessing",
    "from concurrent.futures import ProcessPoolExecutor\n": "ProcessPoolExecutor",
    "import concurrent.futures.process\n": "concurrent.futures.process",
    "from torch.utils.cpp_extension import load_inline\n": "cpp_extension",
    "from torch.utils import cpp_extension\n": "cpp_extension",
    "import builtins\nbuiltins.exec('1')\n": "import of builtins",
    "import gc\n": "import of gc",
    "import inspect\n": "import of inspect",
    "import types\n": "import of types",
    "import pty\n": "import of pty",
    "import asyncio\n": "import of asyncio",
    "import shutil\n": "import of shutil",
    "import pickle\n": "import of pickle",
    "from . import secrets\n": "relative imports",
    # the interpreter's module table and frames
    "import sys\nposix = sys.modules['posix']\n": "sys.modules",
    "from sys import modules\n": "sys.modules",
    "import sys as s\ns.modules['os']\n": "sys.modules",
    "import sys\nsys.settrace(None)\n": "sys.settrace",
    "import sys\nsys.meta_path.clear()\n": "sys.meta_path",
    "def g():\n    yield 1\nx = g().gi_frame\n": "gi_frame",
    "try:\n    1 / 0\nexcept Exception as e:\n    tb = e.__traceback__\n": "__traceback__",
    # string-built attribute access and imports
    "getattr(__builtins__, '__imp' + 'ort__')('os')\n": "literal attribute name",
    "import os\ngetattr(os, 'sys' + 'tem')('id')\n": "literal attribute name",
    "name = 'system'\ngetattr(obj, name)\n": "literal attribute name",
    "g = getattr\ng(obj, 'x')\n": "may only be called directly",
    "setattr(obj, '__class__'[0:2] + 'x', 1)\n": "literal attribute name",
    "getattr(obj, 'system')\n": "dangerous attribute",
    "import operator\noperator.attrgetter('__globals__')(f)\n": "attrgetter",
    "'{0.__class__.__bases__}'.format(x)\n": "__bases__",
    "from builtins import __import__\n": "import of builtins",
    # namespaces and dunders
    "vars(type)['__subclasses__'](type)\n": "vars",
    "globals()['os']\n": "globals",
    "locals()\n": "locals",
    "type.__dict__['mro']\n": "__dict__",
    "[].__class__.__mro__[1]\n": "__mro__",
    "object.__subclasses__()\n": "__subclasses__",
    "f.__code__.co_consts\n": "__code__",
    "f.__closure__[0].cell_contents\n": "__closure__",
    "type(x).mro()[-1]\n": "attribute mro",
    "__builtins__['eval']('1')\n": "__builtins__",
    "x = __loader__\n": "__loader__",
    "class A(metaclass=M):\n    pass\n": "metaclass",
    # dynamic code
    "e = eval\ne('1')\n": "eval",
    "compile('1', 'x', 'eval')\n": "compile",
    "breakpoint()\n": "breakpoint",
    "input()\n": "input",
    "import os\nhelp(os)\n": "help",
    # files the candidate has no business with
    "open('/proc/self/environ').read()\n": "/proc",
    "open('/sys/fs/cgroup/memory.max')\n": "/sys",
    "open(path)\n": "literal path",
    "o = open\no('/tmp/x')\n": "may only be called directly",
}


@pytest.mark.parametrize("code", LEGIT)
def test_ordinary_candidate_code_passes(code: str) -> None:
    check_code(code)


def test_paper_style_arc_agent_with_numpy_passes() -> None:
    check_code(PAPER_ARC_NUMPY)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_adas_baseline_passes(name) -> None:
    check_code(BASELINES[name].code)


@pytest.mark.parametrize("proposal", discopop_baselines(), ids=lambda p: p.name)
def test_every_discopop_baseline_passes(proposal) -> None:
    check_code(proposal.code)


@pytest.mark.parametrize(("code", "needle"), list(HOSTILE.items()))
def test_hostile_code_is_rejected_with_a_one_line_reason(code: str, needle: str) -> None:
    with pytest.raises(GateError) as info:
        check_code(code)
    reason = info.value.reason
    assert needle in reason and "\n" not in reason and reason.startswith(("line ", "syntax error"))
