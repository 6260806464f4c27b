"""Every benchmark runs in its quick mode and prints one JSON object with its documented keys (no timing checked),
so a benchmark cannot rot unnoticed (``synth_realism.py`` runs in ``test_synth_features``)."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, SHARED_DATA

# script, quick arguments, keys its JSON must hold, whether it needs ../shared/data
QUICK = [
    ("real_quality.py", ["--quick"], {"models", "missing", "quick"}, False),
    ("finetune_gain.py", ["--quick"], {"before", "after", "gain", "train_minutes"}, True),
]


@pytest.mark.parametrize(("script", "args", "keys", "needs_data"), QUICK, ids=[q[0] for q in QUICK])
def test_bench_quick_mode_prints_its_json(script, args, keys, needs_data, tmp_path):
    if needs_data and not SHARED_DATA.exists():
        pytest.skip("shared data not found")
    env = {**os.environ, "EPYSEG_IJ_HOME": str(tmp_path / "home")}
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args], capture_output=True, text=True, env=env, timeout=900
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)  # the whole of stdout is one JSON object
    assert keys <= set(report), f"{script}: missing {keys - set(report)}"
