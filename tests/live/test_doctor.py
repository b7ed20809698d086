"""`streamtag doctor` on this machine's real audio stack, model and ports."""

from __future__ import annotations

import json
import socket

from .conftest import run_cli


def _checks(out: str) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(out)}


def test_doctor_passes_where_live_can_run(live_env, model_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rc, out, err = run_cli(["doctor", "--json", "--provider", "cpu", "--model", str(model_path), "--ws",
                            f"127.0.0.1:{port}"], env=live_env)
    checks = _checks(out)
    assert list(checks) == ["PortAudio", "PulseAudio/PipeWire", "model", "provider", "feed port", "taste profile"]
    assert checks["model"]["status"] == "ok" and "streamtag-crnn 2.4.0: 4 genres, 50 tags" in checks["model"]["detail"]
    assert "front end, each frame once" in checks["model"]["detail"]
    assert checks["feed port"] == {"name": "feed port", "status": "ok", "detail": f"127.0.0.1:{port} is free"}
    assert checks["taste profile"]["detail"].startswith("none yet")
    assert rc == (1 if any(c["status"] == "fail" for c in checks.values()) else 0), err


def test_doctor_says_what_to_fix(live_env, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc, out, err = run_cli(["doctor", "--provider", "cpu", "--model", str(tmp_path / "missing.onnx"), "--ws",
                                f"127.0.0.1:{port}"], env=live_env)
    assert rc == 1 and "Traceback" not in err
    lines = {line.split()[1] if not line.startswith("FAIL  feed") else "feed": line for line in out.splitlines()}
    assert lines["model"].startswith("FAIL") and "model file not found" in lines["model"] and "--model" in lines["model"]
    assert lines["feed"].startswith("FAIL") and f"127.0.0.1:{port} is taken" in lines["feed"] and "--ws" in lines["feed"]
    assert "streamtag doctor: 2 to fix: model, feed port" in err
