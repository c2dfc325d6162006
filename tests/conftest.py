import os
import socket
import time
import urllib.request

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: needs the running lab (make test starts one)")


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url.rstrip("/") + "/_localstack/health", timeout=2).read()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def lab_up():
    url = os.environ.get("AWS_ENDPOINT_URL")
    # Inside make test the lab runs (its runner started it): a LocalStack slow to answer on a saturated machine must
    # be waited for, never taken for "no lab" (that once skipped all 145 lab tests of a shard, silently).
    in_make_test = os.environ.get("CLOUDLAB_FRESH_LESSONS") == "1"
    deadline = time.monotonic() + (120 if in_make_test else 5)
    while url:
        if _answers(url):
            return url
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    if in_make_test:
        pytest.fail(f"make test started the lab, but LocalStack does not answer at {url}: see the shard's log")
    pytest.skip("the lab is not running (make test starts it; or run `make lab` first)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("lab"):
            item.fixturenames.append("lab_up") if "lab_up" not in item.fixturenames else None


@pytest.fixture
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _private_progress(tmp_path, monkeypatch):
    """Unit tests never touch the learner's (or the test lab's) progress file."""
    monkeypatch.setenv("CLOUDLAB_PROGRESS_FILE", str(tmp_path / "progress.json"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Lets fixtures see whether the test failed (the browser test saves a screenshot then)."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
