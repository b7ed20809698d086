"""`streamtag bench --json`: both paths measured in one run, and the work per hop the model's counts imply."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.timeout(240)
def test_bench_reports_both_paths_and_the_work_per_hop(data_dir, live_env):
    clip = data_dir / "gtzan/samples/rock.00000.flac"
    result = subprocess.run(
        [sys.executable, "-m", "streamtag.cli", "bench", str(clip), "--json", "--live-s", "6", "--warmup-s", "2"],
        capture_output=True, text=True, check=False, cwd=REPO, env=live_env, timeout=220,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    work = report["work"]
    # 0.5 s is 22 frames of 512 samples: the network (92.0) and 22 frames of the front end (2.2017 each)
    assert work["hop_frames"] == 22 and work["frames_per_window"] == 128
    assert work["hop_mflop"] == pytest.approx(work["network_mflop"] + 22 * work["frontend_mflop_per_frame"], abs=1e-3)
    assert work["window_mflop"] == pytest.approx(373.8, abs=0.1)
    assert work["hop_share"] == pytest.approx(work["hop_mflop"] / work["window_mflop"], abs=1e-4) and work["hop_share"] < 0.45
    for name in ("frames_once", "whole_windows"):
        part = report[name]
        assert part["live"]["latency_p50_ms"] > 0 and part["live"]["cpu_percent_of_one_core"] > 0
        assert [(r["threads"], r["batch_size"]) for r in part["offline"]["runs"]] == [(0, 8), (0, 32), (1, 8), (1, 1)]
        # 30 s at the model's 65-frame hop: 1 + (661500 - 66150) // 33280 = 18 windows, the same on both paths
        assert all(r["windows"] == 18 for r in part["offline"]["runs"])
        assert part["single_stream"]["windows"] == 1 + (661500 - 66150) // 11264
    assert "hop 0.511 s, stft front end on new frames only" in report["frames_once"]["live"]["provider_line"]
    assert "whole windows" in report["whole_windows"]["live"]["provider_line"]
    ratios = report["ratios"]
    assert ratios["offline_speedup"] == pytest.approx(
        report["frames_once"]["offline"]["runs"][0]["times_real_time"] / report["whole_windows"]["offline"]["runs"][0]["times_real_time"], abs=1e-3)
