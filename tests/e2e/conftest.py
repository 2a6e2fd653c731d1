"""Fixtures for the commentd end-to-end suite. See README.md in this directory."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e_lib  # noqa: E402
from e2e_lib import Client, Server, User, binary_path, config_yaml  # noqa: E402

# COMMENTD_E2E_URL=http://host:port runs the suite against a running deployment (the cluster's
# front door, `make cluster`) instead of a binary started here: the shared `server` is that
# URL, and tests that need a process of their own (restarts, kill -9, private configs) skip;
# the cluster's fault tests (deploy/tests/test_cluster.py) stand in for them.
E2E_URL = os.environ.get("COMMENTD_E2E_URL", "")


class RemoteServer(Client):
    """The shared server as a URL: the HTTP conveniences of Client, no process."""

    def __init__(self, url: str):
        u = urlparse(url)
        super().__init__(u.hostname or "127.0.0.1", u.port or 80)
        self.client = self
        self.remote = True


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than 20 s")
    config.addinivalue_line("markers", "needs_server: runs the commentd binary")


def _check_binary():
    b = binary_path()
    if b.is_file() and os.access(b, os.X_OK):
        return
    msg = f"commentd binary not found at {b} (build it, or set COMMENTD_BIN)"
    if os.environ.get("COMMENTD_E2E_REQUIRE") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def commentd_bin():
    if E2E_URL:
        pytest.skip("starts its own commentd process: not in a run against COMMENTD_E2E_URL")
    _check_binary()
    return binary_path()


@pytest.fixture(scope="session")
def server(request, tmp_path_factory):
    """One server shared by every test that doesn't need its own (tests use fresh video ids)."""
    if E2E_URL:
        yield RemoteServer(E2E_URL)
        return
    request.getfixturevalue("commentd_bin")
    srv = Server(tmp_path_factory.mktemp("shared"), config_yaml(), name="shared")
    srv.start()
    yield srv
    rc = srv.terminate()
    assert rc == 0, f"shared server: SIGTERM gave exit code {rc}\n{srv.stderr_tail()}"


@pytest.fixture
def server_factory(commentd_bin, tmp_path):
    """Makes private servers (own config and data dir); kills any left running at teardown."""
    made: list[Server] = []

    def make(config_text: str | None = None, name: str = "private", data_dir=None) -> Server:
        srv = Server(tmp_path / f"{name}-{len(made)}", config_text or config_yaml(),
                     data_dir=data_dir, name=name)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.kill9()


@pytest.fixture
def user():
    return User()


@pytest.fixture
def other():
    return User()


@pytest.fixture
def moderator():
    return User(role="moderator")


def pytest_runtest_setup(item):
    e2e_lib.CURRENT_TEST["nodeid"] = item.nodeid


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for srv in list(e2e_lib.LIVE_SERVERS):
            if srv.proc is None or (srv.owner != item.nodeid and not srv.running()):
                continue
            report.sections.append(
                (f"commentd stderr tail ({srv.name}, {srv.log_path})", srv.stderr_tail()))
