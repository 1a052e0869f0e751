"""mfx-train tells OpenMP's idle threads to sleep unless the user chose otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

_PROBE = (
    "import os, sys; from mfx.cli._common import import_train; import_train('mfx-train'); "
    "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
)


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_wait_policy_is_set_before_torch_loads(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.split() == [expected, "True"]
