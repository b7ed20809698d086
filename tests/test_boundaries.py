"""The no-torch boundary: the runtime, and evaluation of an exported model, never import torch."""

from __future__ import annotations

import subprocess
import sys

RUNTIME_MODULES = ("streamtag.cli", "streamtag.live", "streamtag.commands.tag", "streamtag.commands.taste",
                   "streamtag.commands.evaluate", "streamtag.train.evaluate", "streamtag.train.distill",
                   "streamtag.train.options", "streamtag.metrics")


def test_runtime_and_evaluation_leave_torch_out():
    code = ("import importlib, sys\n"
            f"for name in {RUNTIME_MODULES!r}: importlib.import_module(name)\n"
            "from streamtag.cli import main\n"
            "print(sorted(m for m in ('torch', 'tensorflow', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_train_without_torch_says_what_to_install(tmp_path):
    """torch hidden from the import system, as on an install without the [train] extra."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "from streamtag.cli import main\n"
            f"sys.exit(main(['train', {str(tmp_path)!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert "needs the [train] extra: pip install torch==2.13.0" in out.stderr and "Traceback" not in out.stderr
