"""The monitoring files of deploy/: the Prometheus config and its alerting rules are valid,
and the rules fire (and stay quiet) as their unit tests in alerts_test.yml say."""
from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

PROM = pathlib.Path(__file__).resolve().parents[1] / "prometheus"


def promtool(*args: str) -> str:
    if not shutil.which("promtool"):
        pytest.skip("promtool missing: scripts/install-deps.sh --test installs prometheus")
    r = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=PROM)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_config_and_rules_are_valid():
    out = promtool("check", "config", "prometheus.yml")
    assert "1 rule files found" in out


def test_alerts_fire_as_their_unit_tests_say():
    promtool("test", "rules", "alerts_test.yml")
