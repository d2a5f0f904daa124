"""Shared fixtures of the Python tests (run: /usr/bin/python3 -m pytest python/tests, with the
package installed or python/ on PYTHONPATH next to a built _cuebm module)."""

import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def cli_path():
    """The `cuebm` command built from the same sources: $CUEBM_CLI, else build/bin/cuebm."""
    path = os.environ.get("CUEBM_CLI") or str(REPO / "build" / "bin" / "cuebm")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else shutil.which("cuebm")


@pytest.fixture
def cli():
    """Runs the cuebm command (skips when it is not built) and returns its stdout."""
    path = cli_path()
    if not path:
        pytest.skip("the cuebm command is not built (set CUEBM_CLI or build build/bin/cuebm)")

    def run(*args):
        r = subprocess.run([path, *map(str, args)], capture_output=True, text=True)
        assert r.returncode == 0, f"cuebm {' '.join(map(str, args))}: {r.stderr}"
        return r.stdout

    return run


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def torch_or_skip():
    return pytest.importorskip("torch", reason="torch is not installed")
