"""`commentd migrate` as processes against a real Cassandra (COMMENTD_TEST_CQL=host:port, set
by `make test`): two processes at once both exit 0, a rerun applies nothing, and an
unreachable cluster exits 1 with the reason. Skipped without a server, failed under
COMMENTD_TEST_REQUIRE=1."""
from __future__ import annotations

import os
import subprocess

from e2e_lib import binary_path, cql_address


def write_config(tmp_path, hosts: str, keyspace: str) -> str:
    path = tmp_path / f"{keyspace}.yaml"
    path.write_text(f"""storage:
  cql:
    hosts: ["{hosts}"]
    keyspace: "{keyspace}"
    consistency: "one"
    request_timeout: "60s"
""")
    return str(path)


def migrate(config: str) -> subprocess.Popen:
    return subprocess.Popen([str(binary_path()), "migrate", "--config", config],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_at_once_then_a_rerun_applies_nothing(commentd_bin, tmp_path):
    keyspace = f"e2e_migrate_{os.getpid()}"
    config = write_config(tmp_path, cql_address(), keyspace)
    runs = [migrate(config), migrate(config)]
    outs = [p.communicate(timeout=600) for p in runs]
    for p, (out, err) in zip(runs, outs):
        assert p.returncode == 0, f"stdout: {out}\nstderr: {err}"
        assert f"keyspace {keyspace} at schema version" in out
    again = migrate(config)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert "applied: none" in out


def test_unreachable_cluster_exits_1_with_the_reason(commentd_bin, tmp_path):
    config = write_config(tmp_path, "127.0.0.1:1", "e2e_migrate_unreachable")
    p = migrate(config)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1, out
    assert "commentd migrate: cannot connect to 127.0.0.1:1" in err
