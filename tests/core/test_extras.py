"""Optional dependencies: the one-line error naming the extra, and plugin packages that import
no optional package until a config selects their backend."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chatcore.errors import StartupError
from chatcore.extras import Extra, MissingExtra

#: What the extras install, and the engine: none of it may load with the plugin packages, or
#: a base install breaks (the former) and every `chatcore` command is slow (both).
NOT_AT_IMPORT = [
    "asyncpg",
    "redis",
    "nats",
    "s3fs",
    "pywebpush",
    "httpx",
    "cryptography",
    "sqlalchemy",
    "alembic",
    "chatcore.server.app",
]


def test_an_installed_extra_is_no_problem():
    extra = Extra("json", "the JSON backend", {"json": "json"})
    assert extra.missing() == []
    assert extra.problem() is None
    extra.require()


def test_a_missing_package_is_one_line_naming_the_extra():
    extra = Extra("redis", "the Redis broker", {"json": "json", "no_such_module_xyz": "redis"})
    with pytest.raises(MissingExtra) as raised:
        extra.require()
    assert str(raised.value) == (
        "the Redis broker needs the redis package: pip install 'chatcore[redis]'"
    )
    assert isinstance(raised.value, StartupError)  # what start-up failures are


def test_several_missing_packages_are_named_in_one_sentence():
    extra = Extra("x", "the X adapter", {"no_a_xyz": "a", "no_b_xyz": "b-py", "no_c_xyz": "c"})
    assert extra.problem() == (
        "the X adapter needs the a, b-py and c packages: pip install 'chatcore[x]'"
    )


def test_checking_imports_nothing(tmp_path, monkeypatch):
    (tmp_path / "extras_probe_xyz.py").write_text("raise RuntimeError('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert Extra("p", "the probe", {"extras_probe_xyz": "probe"}).missing() == []
    assert "extras_probe_xyz" not in sys.modules


def test_plugin_packages_import_no_optional_package():
    """What `chatcore --help` does: load every entry point. Their public names still work."""
    script = f"""
import importlib.metadata, json, sys
for ep in importlib.metadata.entry_points(group="chatcore"):
    ep.load()
loaded = [m for m in {NOT_AT_IMPORT!r} if m in sys.modules]
from chatcore_redis import RedisBroker
from chatcore_nats import subject
from chatcore_sql import SqlStorage
from chatcore import App
print(json.dumps(loaded))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == []
