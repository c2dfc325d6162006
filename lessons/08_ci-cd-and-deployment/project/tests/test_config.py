"""Unit tests of the order service's configuration: fast, no network, run by the pipeline's test job."""

import pytest

from app.service import Config, ConfigError

BASE = {"ORDERS_BUCKET": "b", "ORDERS_QUEUE_URL": "q"}


def test_defaults():
    c = Config.from_env(BASE)
    assert (c.port, c.log_level, c.fault_rate, c.version) == (8080, "INFO", 0.0, "dev")


def test_version_and_port_come_from_the_environment():
    c = Config.from_env({**BASE, "PORT": "9000", "APP_VERSION": "v2"})
    assert (c.port, c.version) == (9000, "v2")


@pytest.mark.parametrize("bad", [{"PORT": "eighty"}, {"FAULT_RATE": "2"}, {"LOG_LEVEL": "LOUD"}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        Config.from_env({**BASE, **bad})
