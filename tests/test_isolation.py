"""The suite's own folders: nothing a test does reaches the user's profile, config or caches."""

from __future__ import annotations

import os
import subprocess
import sys

from streamtag.taste.store import profile_home
from tests.conftest import ISOLATED_HOME


def test_profile_and_platform_folders_point_into_the_suites_temporary_home():
    from platformdirs import user_cache_dir, user_config_dir, user_data_dir

    for folder in (profile_home(), user_data_dir("streamtag"), user_config_dir("streamtag"), user_cache_dir("streamtag")):
        assert str(folder).startswith(str(ISOLATED_HOME)), folder


def test_a_command_started_by_a_test_sees_the_same_home():
    code = "from streamtag.taste.store import profile_home; print(profile_home())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ.copy())
    assert out.stdout.strip() == str(ISOLATED_HOME / "streamtag")
