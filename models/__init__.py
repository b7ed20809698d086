"""The shipped models, installed as the package data ``streamtag.models`` (see pyproject.toml)."""
