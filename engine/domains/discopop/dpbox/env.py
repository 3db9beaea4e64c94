"""Process environment for offline, quiet HF libraries in a read-only container.

Imported before transformers/datasets/trl: they read these variables at import time. HF_HOME
and the datasets cache go to /tmp (the only writable place besides /out); offline flags stop
hub calls and telemetry, which would hang or fail without a network.
"""

from __future__ import annotations

import os
import tempfile

_SCRATCH = os.path.join(tempfile.gettempdir(), "evobox-hf")

DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HOME": _SCRATCH,
    "HF_DATASETS_CACHE": os.path.join(_SCRATCH, "datasets"),
    "TOKENIZERS_PARALLELISM": "false",
    "TQDM_DISABLE": "1",
    "WANDB_DISABLED": "true",
    "TRANSFORMERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
}

for _name, _value in DEFAULTS.items():
    os.environ.setdefault(_name, _value)
