"""The test-server scripts' own contract (deploy/test-servers.sh, deploy/lib/common.sh), checked
on Redis, which starts in well under a second: env file, idempotent start, stop by recorded
pid only, distinct reserved ports. Run by `make test` (deploy/run-tests.sh)."""
import os
import pathlib
import subprocess
import time

import pytest

DEPLOY = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = DEPLOY / "test-servers.sh"


def run(run_dir, *args, check=True):
    env = dict(os.environ, COMMENTD_TEST_SERVERS_DIR=str(run_dir))
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, check=check,
                          timeout=120)


def read_env(run_dir):
    lines = (run_dir / "env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line)


def recorded_pids(run_dir):
    return [int(p.read_text().split()[0]) for p in run_dir.rglob("pid")]


def alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(l.startswith("State:") and "Z" in l for l in f)
    except FileNotFoundError:
        return False


def wait_gone(pid, seconds=10):
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def tls_ping(env) -> str:
    """PING on the single node's TLS port, verified against its test CA; and the port speaks
    nothing else (a plain PING there gets no PONG)."""
    port = env["COMMENTD_TEST_REDIS_TLS"].split(":")[1]
    tls = env["COMMENTD_TEST_REDIS_TLS_DIR"]
    plain = subprocess.run(["redis-cli", "-p", port, "PING"], capture_output=True, text=True, timeout=10)
    assert "PONG" not in plain.stdout
    return subprocess.run(["redis-cli", "--tls", "--cacert", f"{tls}/ca.pem", "-p", port, "PING"],
                          capture_output=True, text=True, timeout=10).stdout.strip()


@pytest.fixture
def run_dir(tmp_path):
    yield tmp_path
    run(tmp_path, "stop", check=False)


def test_start_writes_env_start_again_keeps_servers_stop_ends_them(run_dir):
    run(run_dir, "start", "redis", "redis-cluster")
    env = read_env(run_dir)
    host, port = env["COMMENTD_TEST_REDIS"].split(":")
    assert host == "127.0.0.1" and 20000 <= int(port) < 32768
    cluster = env["COMMENTD_TEST_REDIS_CLUSTER"].split(",")
    assert len(cluster) == 3
    assert tls_ping(env) == "PONG"
    pids = recorded_pids(run_dir)
    assert len(pids) == 4 and all(alive(p) for p in pids)

    again = run(run_dir, "start", "redis", "redis-cluster")
    assert "already running" in again.stderr
    assert read_env(run_dir) == env
    assert sorted(recorded_pids(run_dir)) == sorted(pids)

    status = run(run_dir, "status").stdout
    assert status.count(": running") == 4

    run(run_dir, "stop")
    assert all(wait_gone(p) for p in pids)
    assert read_env(run_dir) == {}
    assert recorded_pids(run_dir) == []


def test_stop_never_signals_a_process_that_is_not_the_recorded_one(run_dir):
    # A live process whose pid is recorded with another start time: a recycled pid.
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        state = run_dir / "redis"
        state.mkdir(parents=True)
        (state / "pid").write_text(f"{bystander.pid} 1\n")
        run(run_dir, "stop", "redis")
        assert bystander.poll() is None
        assert not (state / "pid").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_ports_are_distinct_and_reserved():
    out = subprocess.run(["bash", "-c", f"source {DEPLOY}/lib/common.sh; free_ports 20; free_ports 20"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert len(out) == 40 and len(set(out)) == 40
    assert all(os.path.isdir(f"/tmp/commentd-test-ports/{p}") for p in out)


def test_kill_then_restart_comes_back_on_the_same_ports(run_dir):
    run(run_dir, "start", "redis", "redis-cluster")
    env = read_env(run_dir)
    old = recorded_pids(run_dir)
    run(run_dir, "kill", "redis", "redis-cluster")
    assert not any(alive(p) for p in old)
    assert run(run_dir, "status").stdout.count(": dead") == 4

    run(run_dir, "restart", "redis", "redis-cluster")
    assert read_env(run_dir) == env
    new = recorded_pids(run_dir)
    assert len(new) == 4 and all(alive(p) for p in new) and not set(new) & set(old)
    port = env["COMMENTD_TEST_REDIS"].split(":")[1]
    pong = subprocess.run(["redis-cli", "-p", port, "PING"], capture_output=True, text=True).stdout
    assert pong.strip() == "PONG"
    assert tls_ping(env) == "PONG"
    for addr in env["COMMENTD_TEST_REDIS_CLUSTER"].split(","):
        info = subprocess.run(["redis-cli", "-p", addr.split(":")[1], "CLUSTER", "INFO"],
                              capture_output=True, text=True).stdout
        assert "cluster_state:ok" in info
