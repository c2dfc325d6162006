import json
import time

import pytest

from cloudlab import checks
from cloudlab.checks import CheckFailed, check


@check("99.1", "A demo check", hints=["first nudge", "second, sharper", "nearly the answer"])
def demo(r, ns):
    f = r.need(ns, "double", callable)
    r.expect(r.call(f, 2) == 4, "double(2) is 4", "double(2) should be 4")
    r.expect(r.call(f, -1) == -2, "double(-1) is -2", "double(-1) should be -2")


def test_pass_prints_and_records(capsys):
    demo({"double": lambda x: 2 * x})
    assert "PASS 99.1" in capsys.readouterr().out
    row = checks.load_progress()["99.1"]
    assert row["last_status"] == "pass" and row["passed_at"] and row["attempts"] == 1


def test_missing_name_is_a_plain_message():
    with pytest.raises(CheckFailed, match="`double` is not defined yet"):
        demo({})


def test_wrong_type():
    with pytest.raises(CheckFailed, match="should be a function, but it is a int"):
        demo({"double": 3})


def test_learner_exception_is_reported_not_raised():
    def double(x):
        raise KeyError("oops")

    with pytest.raises(CheckFailed, match=r"raised KeyError"):
        demo({"double": double})


def test_sys_exit_in_learner_code_is_reported_not_raised():
    import sys

    def double(x):
        sys.exit("cannot double")

    with pytest.raises(CheckFailed, match=r"called sys.exit\('cannot double'\): a function should raise"):
        demo({"double": double})


def test_blank_answer():
    def double(x):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="still raises NotImplementedError"):
        demo({"double": double})


def test_all_expectations_reported_together():
    with pytest.raises(CheckFailed) as e:
        demo({"double": lambda x: 4})
    msg = str(e.value)
    assert "[ok]      double(2) is 4" in msg and "[missing] double(-1) should be -2" in msg
    assert "Hint 1/3: first nudge" in msg


def test_namespace_defaults_to_callers_globals():
    g = {"double": lambda x: x * 2, "demo": demo}
    exec("demo()", g)


def test_hints_are_graduated(capsys):
    with pytest.raises(CheckFailed, match="Hint 1/3"):
        demo({})
    checks.hint("99.1")
    assert "Hint 2/3: second, sharper" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="Hint 2/3"):
        demo({})
    checks.hint("99.1")
    checks.hint("99.1")
    assert checks.hints_seen("99.1") == 3
    with pytest.raises(CheckFailed) as e:
        demo({})
    assert "Hint 3/3: nearly the answer" in str(e.value) and "Stuck?" not in str(e.value)


def test_the_first_hint_call_after_a_failure_shows_the_next_hint_not_the_same_one(capsys):
    """The failure shows hint 1 and says `hint()` shows the next: its first call must reveal hint 2."""
    with pytest.raises(CheckFailed) as e:
        demo({})
    assert "Hint 1/3: first nudge" in str(e.value) and "shows the next hint" in str(e.value)
    checks.hint("99.1")
    out = capsys.readouterr().out
    assert "Hint 2/3: second, sharper" in out, out
    assert checks.hints_seen("99.1") == 2


def test_hint_before_any_failure_starts_at_the_first(capsys):
    checks.hint("99.1")
    out = capsys.readouterr().out
    assert "Hint 1/3: first nudge" in out and "Hint 2/3" not in out
    with pytest.raises(CheckFailed, match="Hint 1/3"):
        demo({})
    checks.hint("99.1")
    assert "Hint 2/3" in capsys.readouterr().out


def test_unknown_hint():
    with pytest.raises(KeyError, match="no check"):
        checks.hint("nope")


def test_emulator_down_becomes_a_friendly_failure():
    from botocore.exceptions import EndpointConnectionError

    @check("99.2", "needs the lab")
    def needs_lab(r, ns):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    with pytest.raises(CheckFailed, match="local cloud is not answering"):
        needs_lab({})
    assert checks.load_progress()["99.2"]["last_status"] == "fail"


def test_a_check_that_looks_at_nothing_fails():
    @check("99.3", "empty")
    def empty(r, ns):
        pass

    with pytest.raises(CheckFailed, match="bug in the check"):
        empty({})


def test_progress_table(capsys):
    demo({"double": lambda x: 2 * x})
    with pytest.raises(CheckFailed):
        demo({})
    table = checks.progress()
    text = repr(table)
    assert "99.1" in text and "passed" in text and "1/1 passed" in text
    assert "<table>" in table._repr_html_()
    assert "No checks run yet" in repr(checks.progress("42"))


def test_corrupt_progress_file_is_not_fatal(tmp_path, monkeypatch):
    p = tmp_path / "p.json"
    p.write_text("{not json")
    monkeypatch.setenv("CLOUDLAB_PROGRESS_FILE", str(p))
    demo({"double": lambda x: 2 * x})
    assert json.loads(p.read_text())["99.1"]["last_status"] == "pass"


def test_checkfailed_renders_without_traceback():
    e = CheckFailed("msg", "1.1")
    assert e._render_traceback_() == ["\x1b[31mCheckFailed\x1b[0m 1.1: msg"]


def test_a_pass_is_a_green_box_in_a_notebook(monkeypatch):
    box = checks.Passed(["PASS 99.1 A demo check", "  [ok] double(2) is 4 <b>"])
    page = box._repr_html_()
    assert "#1a7f37" in page and "PASS 99.1" in page and "&lt;b&gt;" in page  # green, escaped
    shown = []
    import IPython
    import IPython.display

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", shown.append)
    demo({"double": lambda x: 2 * x})
    assert len(shown) == 1 and isinstance(shown[0], checks.Passed) and "PASS 99.1" in repr(shown[0])


def test_a_failure_never_echoes_a_secret_the_check_passed():
    import secrets

    from cloudlab.checks import check

    fake = "Zq" + secrets.token_hex(7)  # made at run time: 16 characters, letters and digits
    word = secrets.token_urlsafe(5)

    @check("99.8", "secret echo", hints=["h"])
    def c(r, ns):
        def store(name, value, password=None):
            raise ValueError("boom")

        r.call(store, "l07-app/db", fake, password=word)

    with pytest.raises(CheckFailed) as e:
        c({})
    msg = str(e.value)
    assert "'l07-app/db'" in msg and "boom" in msg
    assert fake not in msg and word not in msg and "<hidden: 16 characters>" in msg


def test_a_scripted_clock_moves_only_when_the_check_moves_it():
    from cloudlab.checks import ScriptedClock

    clock = ScriptedClock(1000.0)
    assert clock() == clock() == 1000.0
    clock.now += 46
    assert clock() == 1046.0
    assert abs(ScriptedClock()() - time.time()) < 5
