"""Rules that hold for every check of every lesson, tested once over the whole registry."""

import importlib
import pkgutil
import re

import pytest

import cloudlab
from cloudlab.checks import REGISTRY


def _load_all_lessons():
    for mod in pkgutil.iter_modules(cloudlab.__path__):
        if re.fullmatch(r"lesson\d\d", mod.name):
            importlib.import_module(f"cloudlab.{mod.name}")
    return {k: v for k, v in REGISTRY.items() if v.fn.__module__.startswith("cloudlab.")}  # not the tests' demos


ALL = _load_all_lessons()


def test_there_are_checks():
    assert len(ALL) >= 10


@pytest.mark.parametrize("check_id", sorted(ALL))
def test_each_check_has_two_or_three_graduated_hints(check_id):
    spec = ALL[check_id]
    assert 2 <= len(spec.hints) <= 3, f"{check_id} has {len(spec.hints)} hints"
    assert len(set(spec.hints)) == len(spec.hints), "hints repeat themselves"
    assert all(h.strip() for h in spec.hints)


@pytest.mark.parametrize("check_id", sorted(ALL))
def test_each_check_id_names_its_lesson_module(check_id):
    spec = ALL[check_id]
    nn, k = check_id.split(".")
    assert re.fullmatch(r"\d\d", nn) and k.isdigit(), check_id
    assert spec.fn.__module__.startswith(f"cloudlab.lesson{nn}"), f"{check_id} lives in {spec.fn.__module__}"
    assert spec.title and spec.title[0].isupper()
