"""Where evobox keeps what outlives one run (baseline scores, models, data).

One helper so every component agrees: EVOBOX_CACHE_DIR wins, then XDG_CACHE_HOME/evobox, then
~/.cache/evobox.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The evobox cache directory (created if missing)."""
    explicit = os.environ.get("EVOBOX_CACHE_DIR")
    if explicit:
        path = Path(explicit)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        path = (Path(xdg) if xdg else Path.home() / ".cache") / "evobox"
    path.mkdir(parents=True, exist_ok=True)
    return path
