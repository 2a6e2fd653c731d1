"""The systemd units of deploy/systemd verify cleanly (`systemd-analyze verify`), with the
binary path pointed at the built commentd."""
from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

DEPLOY = pathlib.Path(__file__).resolve().parents[1]


def test_units_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze missing")
    binary = DEPLOY.parent / "build" / "commentd"
    exe = str(binary) if binary.exists() else shutil.which("true")
    units = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        out = tmp_path / unit.name
        out.write_text(unit.read_text().replace("/usr/local/bin/commentd", exe))
        units.append(str(out))
    assert len(units) == 2
    r = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stdout + r.stderr
