"""Item 2 of issue 19: after `make stop` + `make lab` the emulators are empty. A cell (or a check) that touches a
resource the notebook created before the restart says so, in one paragraph with the one action that brings the
lesson back, instead of a raw traceback; the same error without a restart is the learner's and stays as it is.
A real moto is stopped and started again here (moto starts in about a second; LocalStack behaves the same)."""

import sys
import time

import pytest
from IPython.core.interactiveshell import InteractiveShell

from cloudlab import kernel, net
from cloudlab.checks import CheckFailed, check
from cloudlab.lab import Lab, cli, emulators, process

GONE = "gone because the local cloud restarted (emulators keep no state across a restart)"


@pytest.fixture(scope="module")
def _moto(tmp_path_factory):
    """One real moto for the module (a lab of its own); tests that restart it leave it running."""
    with pytest.MonkeyPatch.context() as mp:
        state = tmp_path_factory.mktemp("restart") / "state"
        mp.setenv("CLOUDLAB_STATE_DIR", str(state))
        mp.setenv("CLOUDLAB_MOTO_PORT", str(net.free_port()))
        lab = Lab.from_env("test")
        for k, v in lab.aws_env().items():
            mp.setenv(k, v)
        emulators.start_moto(lab)
        yield lab
        emulators.stop_one(lab, "moto")


@pytest.fixture
def moto_lab(_moto, monkeypatch):
    monkeypatch.setattr(kernel, "_SETUP_AT", [])
    import boto3

    ddb = boto3.client("dynamodb")  # every test starts without the table
    if "l99-orders" in ddb.list_tables()["TableNames"]:
        ddb.delete_table(TableName="l99-orders")
    return _moto


@pytest.fixture
def shell():
    sh = InteractiveShell.instance()
    kernel._INSTALLED.discard(id(sh))
    kernel.install(sh)
    yield sh
    sh.set_custom_exc((), None)
    kernel._INSTALLED.discard(id(sh))


MAKE_TABLE = """
import boto3
ddb = boto3.client("dynamodb")
ddb.create_table(TableName="l99-orders", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                 AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
"""


def restart_moto(lab):
    emulators.stop_one(lab, "moto")  # `make stop`
    time.sleep(0.05)  # the clock moves on between the setup and the restart, as it does for a learner
    emulators.start_moto(lab)  # `make lab`


def test_a_cell_that_touches_a_resource_lost_in_a_restart_says_so(moto_lab, shell, capsys):
    kernel.mark_setup()  # the notebook's setup cell (cloudlab.connect())
    assert shell.run_cell(MAKE_TABLE).success
    restart_moto(moto_lab)
    result = shell.run_cell('ddb.describe_table(TableName="l99-orders")')
    out = capsys.readouterr().out
    assert not result.success, "the cell still fails (CI notices)"
    assert GONE in out and "re-run the notebook from its setup cell" in out and "ResourceNotFoundException" in out
    assert "DescribeTable on dynamodb" in out and "moto started at" in out
    assert "Traceback" not in out and "botocore" not in out, out


def test_the_same_error_without_a_restart_is_the_learners_and_left_alone(moto_lab, shell, capsys):
    kernel.mark_setup()
    assert shell.run_cell(MAKE_TABLE).success
    result = shell.run_cell('ddb.describe_table(TableName="l99-no-such-table")')  # a typo, not a restart
    out = capsys.readouterr().out
    assert not result.success and "ResourceNotFoundException" in out
    assert GONE not in out and "Traceback" in out or "---" in out, out


def test_a_setup_cell_run_after_the_restart_counts(moto_lab, shell, capsys):
    kernel.mark_setup()
    restart_moto(moto_lab)
    kernel.mark_setup()  # the learner re-ran the setup cell: what is missing now is missing for another reason
    shell.run_cell('import boto3; boto3.client("dynamodb").describe_table(TableName="l99-orders")')
    assert GONE not in capsys.readouterr().out


def test_a_check_that_meets_a_resource_lost_in_a_restart_says_so(moto_lab):
    import boto3

    @check("99.7", "reads a table the notebook made", hints=["make the table"])
    def reads_table(r, ns):
        boto3.client("dynamodb").describe_table(TableName="l99-orders")
        r.expect(True, "the table is there", "")

    kernel.mark_setup()
    exec(MAKE_TABLE, {})
    reads_table({})
    restart_moto(moto_lab)
    with pytest.raises(CheckFailed, match="this resource is gone because the local cloud restarted"):
        reads_table({})


def test_the_lab_records_each_emulator_start(moto_lab):
    first = emulators.started_at(moto_lab, "moto")
    assert first and abs(first - time.time()) < 120
    restart_moto(moto_lab)
    assert emulators.started_at(moto_lab, "moto") > first
    assert emulators.started_at(moto_lab, "localstack") is None, "never started in this lab"


def test_make_stop_says_what_survives_and_the_one_action(tmp_path, capsys):
    lab = Lab.from_env("test", {"CLOUDLAB_STATE_DIR": str(tmp_path / "s"), "CLOUDLAB_PORT_OFFSET": "3400"})
    cli.down(lab)
    out = capsys.readouterr().out
    assert "kept:      your code, variables" in out and "progress" in out
    assert "not kept:  what the lessons created in the emulators" in out and "lesson" in out
    assert "re-run each notebook you were working in from its setup cell" in out


@pytest.mark.parametrize(
    "code",
    ["ResourceNotFoundException", "NoSuchBucket", "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue",
     "InvalidVolume.NotFound", "ParameterNotFound", "NoSuchEntity", "ClusterNotFoundException"],
)  # fmt: skip
def test_what_counts_as_a_missing_resource(code):
    from botocore.exceptions import ClientError

    assert kernel._gone(ClientError({"Error": {"Code": code, "Message": "x"}}, "Op")) == code


@pytest.mark.parametrize("code", ["AccessDenied", "ValidationException", "ThrottlingException", "BucketAlreadyExists"])
def test_what_does_not(code):
    from botocore.exceptions import ClientError

    assert kernel._gone(ClientError({"Error": {"Code": code, "Message": "x"}}, "Op")) == ""


def test_a_lesson_process_stopped_by_make_stop_says_so(tmp_path, monkeypatch, shell, capsys):
    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(tmp_path / "s"))
    monkeypatch.setattr(kernel, "_SETUP_AT", [])
    lab = Lab.from_env("test")
    port = net.free_port()
    cell = f'from cloudlab import net; net.request("GET", "http://127.0.0.1:{port}/health")'
    kernel.mark_setup()
    shell.run_cell(cell)  # nothing was stopped since the setup: the learner's own refused connection
    assert "make stop" not in capsys.readouterr().out
    time.sleep(0.05)
    worker = process.spawn([sys.executable, "-c", "import time; time.sleep(60)"], lab.logfile("l99-lb"),
                           pidfile=lab.procs_dir / "l99-lb.pid")  # fmt: skip
    cli.stop_cloud(lab)  # `make stop`
    worker.wait(5)
    result = shell.run_cell(cell)
    out = capsys.readouterr().out
    assert (
        not result.success and "ConnectionRefusedError" in out and "`make stop` stopped this lesson's processes" in out
    )
    assert "re-run the notebook from its setup cell" in out and "Traceback" not in out
