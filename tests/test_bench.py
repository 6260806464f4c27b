"""Every benchmark runs in its quick mode and prints one JSON object with its documented keys (no timing checked),
so a benchmark cannot rot unnoticed (``synth_realism.py`` runs in ``test_synth_features``)."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, SHARED_DATA

EPYSEG_PYTHON = REPO / ".venv-epyseg" / "bin" / "python"  # EPySeg 0.1.52's own environment, built by hand
TINY_TRAINING = ["--encoder", "resnet18", "--tile", "64", "--batch", "2", "--steps", "2", "--warmup", "1"]

# script, quick arguments, keys its JSON must hold, whether it needs ../shared/data
QUICK = [
    (
        "network_speed.py",
        ["--quick"],
        {"tensorflow_s_per_mpix", "openvino_s_per_mpix", "openvino_speedup", "max_abs_difference"},
        False,
    ),
    (
        "overhead.py",
        ["--quick"],
        {"tensorflow", "openvino", "faster", "ratio", "postprocess_share", "peak_rss_mb_16k", "backend_16k"},
        False,
    ),
    ("transfer.py", ["--quick"], {"to_numpy_gbps", "to_imageplus_gbps", "macro_roundtrip_ms"}, False),
    ("macro_startup.py", ["--quick"], {"headless", "private", "extra_start_s", "load"}, False),
    (
        "train_pipeline.py",
        [*TINY_TRAINING, "--repeats", "1", "--images", "2", "--size", "128"],
        {"pipeline_steps_per_s", "preloaded_steps_per_s", "ratio"},
        False,
    ),
    # runs bench/epyseg_reference.py in EPySeg's own environment on the same images
    ("epyseg_side_by_side.py", ["--n", "1"], set(), True),
    ("real_quality.py", ["--quick"], {"models", "missing", "quick"}, False),
    ("finetune_gain.py", ["--quick"], {"before", "after", "gain", "train_minutes"}, True),
    ("batch_scaling.py", ["--quick"], {"images_per_s", "speedup", "load"}, False),
    ("cell_size.py", ["--quick"], {"model", "max_cell_diameter", "scales"}, False),
    ("huge_image.py", ["--quick"], {"peak_rss_mb", "seconds", "s_per_mpix", "cells", "output_mb"}, False),
]


RUN_ELSEWHERE = {"epyseg_reference.py": "by epyseg_side_by_side.py", "synth_realism.py": "by test_synth_features"}


def test_every_bench_script_is_run():
    assert {p.name for p in (REPO / "bench").glob("*.py")} == {q[0] for q in QUICK} | set(RUN_ELSEWHERE)


@pytest.mark.parametrize(("script", "args", "keys", "needs_data"), QUICK, ids=[q[0] for q in QUICK])
def test_bench_quick_mode_prints_its_json(script, args, keys, needs_data, tmp_path):
    if script.startswith("epyseg_") and not EPYSEG_PYTHON.exists():
        pytest.skip(f"EPySeg's environment not found at {EPYSEG_PYTHON}")
    if needs_data and not SHARED_DATA.exists():
        pytest.skip("shared data not found")
    env = {**os.environ, "EPYSEG_IJ_HOME": str(tmp_path / "home")}
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args], capture_output=True, text=True, env=env, timeout=900
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)  # the whole of stdout is one JSON object
    assert keys <= set(report), f"{script}: missing {keys - set(report)}"
