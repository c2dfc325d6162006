import pytest

from cloudlab import ready


def test_down_emulator_says_what_and_how(monkeypatch, free_port):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with pytest.raises(ready.EmulatorDown) as e:
        ready.wait_for_services(("s3",), timeout=0.5)
    msg = str(e.value)
    assert "s3 (LocalStack" in msg and str(free_port) in msg and "make lab" in msg
    assert "Kept: your code, variables, workspace files and progress" in msg and "setup cell" in msg


def test_every_probe_is_a_course_service_with_its_emulator():
    from cloudlab.lab import SERVICES

    assert set(ready.PROBES) <= set(SERVICES)
    assert {ready.served_by(s) for s in ready.PROBES} == {"LocalStack", "moto"}


@pytest.mark.lab
def test_all_course_services_answer():
    bad = {s: d for s in ready.PROBES for ok, d in [ready.probe(s)] if not ok}
    assert bad == {}
