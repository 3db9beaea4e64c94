"""One local Ray cluster for the whole test session: a head and two workers on loopback (real
`ray start` processes), `evobox_w2` advertising one (fake) GPU. Started on first use only."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cluster.local import LocalCluster, NodeSpec

HEAD, W1, W2 = "evobox_head", "evobox_w1", "evobox_w2"
WORKERS = (W1, W2)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LocalCluster]:
    root = Path(tempfile.mkdtemp(prefix="evobox-ray-", dir="/tmp"))
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_USAGE_STATS_ENABLED")}
    cluster = LocalCluster(root, [NodeSpec(HEAD, head=True), NodeSpec(W1), NodeSpec(W2, gpus=1)])
    try:
        with cluster:
            os.environ.update(cluster.client_env())  # this process is the driver (the evobox head)
            yield cluster
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(root, ignore_errors=True)
