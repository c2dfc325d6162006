"""Lesson 05 (containers): the containers toolkit, the lesson's assets, and every check's wrong answers.

Pure tests need nothing. Tests marked ``lab`` need the running lab and a Docker engine (``make test``
starts both; the engine is the learner's or the lab's own dockerd). Each check has its solution proved
to pass and at least three plausible wrong answers proved to fail with a hint, on the real engine.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from checktest import rejected

from cloudlab import containers, lesson00, lesson05, net, scanners
from cloudlab.checks import REGISTRY, CheckFailed
from cloudlab.containers import engine as engmod
from cloudlab.lab import docker as labdocker

ASSETS = lesson05.PROJECT
BASE_LINE = f"ARG BASE={lesson05.PINNED_BASE}"


# ================================================================== pure: BuildKit output
OLD_FORMAT = """\
#1 [internal] load build definition from Dockerfile.naive
#1 sha256:61e4
#1 transferring dockerfile: 265B done
#1 DONE 0.0s

#4 [1/4] FROM docker.io/local/debian-python:bookworm
#4 sha256:8e0d
#4 DONE 0.1s

#6 [internal] load build context
#6 transferring context: 17.53MB 0.4s done
#6 DONE 0.5s

#5 [2/4] WORKDIR /app
#5 CACHED

#7 [3/4] COPY . .
#7 DONE 0.1s

#8 [4/4] RUN python -m venv /opt/venv && /opt/venv/bin/pip install -r requirements.txt
#8 10.27 Looking in links: wheels
#8 11.35 Successfully installed boto3-1.44.8
#8 DONE 11.5s

#9 exporting to image
#9 writing image sha256:557560f90749b19a9abfa6870a2a20739cb4536ef8fa4aea885b6fa64b99ba1b done
#9 DONE 0.7s
"""

NEW_FORMAT = """\
#0 building with "default" instance using docker driver

#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 215B done
#1 DONE 0.0s

#5 [builder 2/3] COPY requirements.txt ./
#5 CACHED

#6 [builder 3/3] RUN pip install -r requirements.txt
#6 0.512 Looking in links: /wheels
#6 DONE 3.2s

#7 [runtime 2/3] COPY --from=builder /opt/venv /opt/venv
#7 DONE 0.3s

#8 [runtime 3/3] RUN exit 3
#8 0.101 boom
#8 ERROR: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3
------
 > [runtime 3/3] RUN exit 3:
------
ERROR: failed to solve: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3
"""


def test_parse_plain_docker_20_output():
    steps, context, image = containers.parse_plain(OLD_FORMAT)
    assert [s.index for s in steps] == ["1/4", "2/4", "3/4", "4/4"]
    assert [s.cached for s in steps] == [False, True, False, False]
    assert steps[3].seconds == 11.5 and steps[3].keyword == "RUN" and steps[3].ran
    assert steps[3].output[-1].startswith("Successfully installed")
    assert not steps[0].ran, "FROM is the base, not a step that ran"
    assert context == 17_530_000 and image.startswith("sha256:557560f9")


def test_steps_come_in_dockerfile_order_even_when_buildkit_numbers_them_otherwise():
    text = "#5 [2/3] WORKDIR /app\n#5 CACHED\n#6 [3/3] COPY . .\n#6 DONE 0.1s\n#7 [1/3] FROM base\n#7 DONE 0.0s\n"
    text += "#9 [runtime 2/2] COPY --from=builder /v /v\n#9 DONE 0.2s\n#8 [builder 2/2] RUN x\n#8 DONE 1.0s\n"
    steps, _, _ = containers.parse_plain(text)
    assert [s.label for s in steps] == [
        "[1/3] FROM base",
        "[2/3] WORKDIR /app",
        "[3/3] COPY . .",
        "[builder 2/2] RUN x",
        "[runtime 2/2] COPY --from=builder /v /v",
    ]


def test_parse_plain_buildx_output_with_stages_and_an_error():
    steps, _, image = containers.parse_plain(NEW_FORMAT)
    assert [(s.stage, s.index) for s in steps] == [
        ("builder", "2/3"),
        ("builder", "3/3"),
        ("runtime", "2/3"),
        ("runtime", "3/3"),
    ]
    assert steps[0].cached and steps[1].seconds == 3.2
    assert steps[3].error.startswith('process "/bin/sh -c exit 3"') and steps[3].output == ["boom"]
    assert steps[3].label == "[runtime 3/3] RUN exit 3" and image == ""


@pytest.mark.parametrize(
    "text, words",
    [
        ("failed to create LLB definition: dockerfile parse error line 2: unknown instruction: COPPY", "syntax error"),
        ("ERROR: failed to solve: dockerfile parse error on line 3: unknown instruction: FORM", "syntax error"),
        ("urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>", "network"),
        ("ERROR: No matching distribution found for requests==2.32.3", "network"),
        ("Error: [Errno 13] Permission denied: '/opt/venv'", "USER line"),
        ('failed to compute cache key: "/nothere" not found: not found', "not in the build context"),
        ("secret index_token: not found", "build secret"),
        ("something else entirely", "docker's own words"),
    ],
)
def test_build_failures_are_explained(text, words):
    assert words in containers.explain(text)


def test_build_table_and_summary():
    steps, _, _ = containers.parse_plain(OLD_FORMAT)
    b = containers.Build("l05-x:1", "docker build .", True, 12.3, steps, OLD_FORMAT, 23_100_000)
    assert "2 step(s) ran, 1 came from the cache" in b.summary() and "context 23.1 MB" in b.summary()
    assert "CACHED" in b.table() and "11.5 s" in b.table()
    assert b.step("COPY . .").index == "3/4" and b.step("nothing") is None


# ================================================================== pure: .dockerignore, context, tags
ALLOW = "*\n!app/\n!wheels/\n!requirements.txt\n**/__pycache__\n"


@pytest.mark.parametrize(
    "rules, path, ignored",
    [
        (ALLOW, ".env", True),
        (ALLOW, "app/service.py", False),
        (ALLOW, "app/__pycache__/service.cpython-311.pyc", True),
        (ALLOW, "wheels/boto3-1.44.8-py3-none-any.whl", False),
        (ALLOW, "logs/debug.log", True),
        ("*.env\n", ".env", True),
        ("*.env\n", "config/prod.env", False),  # * does not cross a folder
        ("**/*.env\n", "config/prod.env", True),
        ("logs\n", "logs/deep/debug.log", True),  # a folder pattern excludes what is below it
        ("/logs/\n", "logs/debug.log", True),
        ("logs\n!logs/keep.log\n", "logs/keep.log", False),  # the last match wins
        ("!logs/keep.log\nlogs\n", "logs/keep.log", True),
        ("# comment\n\n", ".env", False),
        ("secret?.txt\n", "secret1.txt", True),
        ("secret[0-9].txt\n", "secretx.txt", False),
    ],
)
def test_dockerignore_follows_dockers_rules(rules, path, ignored):
    assert containers.is_ignored(path, containers.parse_dockerignore(rules)) is ignored


def test_context_files_size_and_digest(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "service.py").write_text("print('v1')\n")
    (tmp_path / ".env").write_text("TOKEN=x\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / ".dockerignore").write_text(".env\n")
    assert containers.context_files(tmp_path) == [".dockerignore", "Dockerfile", "app/service.py"]
    assert containers.context_size(tmp_path) == sum(
        (tmp_path / f).stat().st_size for f in (".dockerignore", "Dockerfile", "app/service.py")
    )
    first = containers.content_tag("cloudlab/orders", tmp_path)
    assert re.fullmatch(r"cloudlab/orders:[0-9a-f]{12}", first)
    (tmp_path / ".env").write_text("TOKEN=y\n")
    assert containers.content_tag("cloudlab/orders", tmp_path) == first, "an ignored file does not change the tag"
    (tmp_path / "app" / "service.py").write_text("print('v2')\n")
    assert containers.content_tag("cloudlab/orders", tmp_path) != first, "a code change gives a new tag"
    now = containers.content_tag("cloudlab/orders", tmp_path)
    other = containers.content_tag("cloudlab/orders", tmp_path, build_args={"BASE": "python:3.12-slim"})
    assert other != now, "the same sources on another base get another tag when the build arguments are hashed"


# ================================================================== pure: run helpers
def test_capabilities_and_proc_status():
    assert containers.capabilities("0000000000000000") == []
    assert containers.capabilities("00000000a80425fb")[:3] == ["CHOWN", "DAC_OVERRIDE", "FOWNER"]
    assert len(containers.capabilities("00000000a80425fb")) == 14  # Docker's default set
    text = "Name:\tpython\nUid:\t10001\t10001\t10001\t10001\nGid:\t10001\t10001\t10001\t10001\n"
    text += "VmRSS:\t   50308 kB\nCapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb\nNoNewPrivs:\t1\n"
    ps = containers.parse_proc_status(text)
    assert (ps.uid, ps.gid, ps.caps, ps.no_new_privs, ps.rss_kb) == (10001, 10001, [], True, 50308)
    assert len(ps.bounding) == 14, "a non-root process holds nothing in effect, but its bounding set is full"


def test_hardened_flags_are_the_least_privilege_set():
    f = containers.HARDENED
    pairs = dict(zip(f[::1], f[1:] + [""], strict=True))
    assert pairs["--user"] == "10001:10001" and pairs["--cap-drop"] == "ALL"
    assert (
        "--read-only" in f
        and pairs["--tmpfs"].startswith("/tmp:")
        and {"noexec", "nosuid", "size=16m"} <= set(pairs["--tmpfs"].split(":", 1)[1].split(","))
    )
    # about twice the ~50 MiB the service uses idle: 64 MiB left no room for a burst (issue 20, lower 05 items)
    assert pairs["--security-opt"] == "no-new-privileges" and pairs["--memory"] == "128m" and pairs["--pids-limit"]


def test_history_rows_show_the_dockerfile_line():
    row = containers.HistoryRow("/bin/sh -c pip install x # buildkit", 100)
    assert row.instruction == "pip install x"
    assert containers.HistoryRow("", 5).instruction == "(imported base image)"


def test_shown_command_is_what_a_learner_types():
    eng = containers.Engine("unix:///x.sock", "yours", shutil.which("docker") or "/opt/docker/bin/docker", "env")
    exe = eng.shown_client
    assert exe == ("docker" if shutil.which("docker") else "/opt/docker/bin/docker")
    assert containers.shown(["build", "-f", "/ctx/Dockerfile", "."], eng, "/ctx") == (
        f"DOCKER_BUILDKIT=1 {exe} build -f Dockerfile ."
    )
    assert containers.shown(["run", "--rm", "x"], eng) == f"{exe} run --rm x"
    eng.buildkit = "buildx"
    assert containers.shown(["build", "."], eng) == f"{exe} build ."


# ================================================================== pure: the engine and notebooks
def test_cells_marked_needs_docker_are_skipped_without_an_engine():
    cell = ["# needs: docker\n", "containers.build('x')\n"]
    assert containers.transform_cell(cell, engine_answers=True) == cell
    skipped = containers.transform_cell(cell, engine_answers=False)
    assert len(skipped) == 1 and "skipped" in skipped[0] and skipped[0].startswith("print(")
    exec(compile("".join(skipped), "<cell>", "exec"), {})  # the replacement itself runs
    other = ["print(1)\n"]
    assert containers.transform_cell(other, engine_answers=False) == other


def _fake_docker(folder: Path, version: str, buildx: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "docker"
    exe.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then echo "Docker version {version}, build x"; exit 0; fi\n'
        f'if [ "$1" = "buildx" ]; then exit {0 if buildx else 1}; fi\nexit 1\n'
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize(
    "version, buildx, mode",
    [("20.10.24", False, "env"), ("28.2.2", True, "buildx"), ("28.2.2", False, None)],
)
def test_pick_client_finds_a_cli_that_can_use_buildkit(tmp_path, monkeypatch, version, buildx, mode):
    _fake_docker(tmp_path / "bin", version, buildx)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(engmod.os.path, "isfile", lambda p: p.startswith(str(tmp_path)))
    if mode is None:
        with pytest.raises(containers.EngineMissing.__mro__[1], match="buildx"):
            engmod.pick_client()
    else:
        assert engmod.pick_client() == (str(tmp_path / "bin" / "docker"), mode)


def test_engine_down_mid_lesson_says_what_to_do(monkeypatch, tmp_path):
    dead = containers.Engine(f"unix://{tmp_path}/gone.sock", "yours", shutil.which("docker") or "docker", "env")
    dead.env = {"DOCKER_HOST": dead.host}
    monkeypatch.setattr(engmod, "current", lambda: dead)
    if not shutil.which("docker"):
        pytest.skip("no docker CLI")
    with pytest.raises(containers.EngineDown, match="re-run the lesson's setup cell"):
        engmod.docker("ps")


def test_lesson00_shows_the_engine(monkeypatch):
    monkeypatch.setattr(labdocker, "answering_host", lambda lab=None: None)
    monkeypatch.setattr(labdocker, "can_start", lambda: False)
    engine_row = lesson00.engine_rows()[0]
    assert not engine_row.ok and "systemctl start docker" in engine_row.fix and "05" in engine_row.needed_for
    monkeypatch.setattr(labdocker, "can_start", lambda: True)
    assert lesson00.engine_rows()[0].ok
    monkeypatch.setattr(labdocker, "answering_host", lambda lab=None: "unix:///var/run/docker.sock")
    assert "your engine" in lesson00.engine_rows()[0].detail


# ================================================================== pure: the lesson's assets
def test_every_lesson_dockerfile_pins_the_same_base_by_digest():
    for f in sorted(ASSETS.glob("Dockerfile*")):
        lines = f.read_text().splitlines()
        assert BASE_LINE in lines, f"{f.name}: the ARG BASE line must be the pinned one"
        assert re.search(r"@sha256:[0-9a-f]{64}$", BASE_LINE)
        assert all("${BASE}" in ln for ln in lines if ln.startswith("FROM") and "--from" not in ln), f.name


def test_lesson_dockerfiles_lint_as_the_lesson_says():
    naive = scanners.hadolint(ASSETS / "Dockerfile.naive", quiet=True, honour_ignores=False)
    assert {code for _, code, _, _ in naive["findings"]} == {"DL3042", "DL3025"}
    for name in ("Dockerfile", "Dockerfile.cached", "Dockerfile.secret"):
        assert scanners.hadolint(ASSETS / name, quiet=True, honour_ignores=False)["findings"] == [], name
    prod = (ASSETS / "Dockerfile").read_text()
    assert "USER 10001:10001" in prod and "HEALTHCHECK" in prod and prod.count("FROM ${BASE}") == 2
    assert "checkov:skip=CKV_DOCKER_7:" in prod


def test_allow_list_dockerignore_keeps_the_junk_out():
    rules = containers.parse_dockerignore((ASSETS / ".dockerignore").read_text())
    for path in (".env", "logs/debug.log", "app/__pycache__/x.pyc", ".git/HEAD", "Dockerfile.leaky"):
        assert containers.is_ignored(path, rules), path
    for path in ("app/service.py", "wheels/boto3.whl", "requirements.txt", "healthcheck.py", "tools/private_index.py"):
        assert not containers.is_ignored(path, rules), path


def test_requirements_pin_every_package_exactly_with_its_hash():
    text = (ASSETS / "requirements.txt").read_text().replace("\\\n", " ")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    pattern = r"[A-Za-z0-9_.-]+==[0-9][\w.]*\s+--hash=sha256:[0-9a-f]{64}"
    assert len(lines) == 7 and all(re.fullmatch(pattern, ln.strip()) for ln in lines), lines


def test_the_wheelhouse_matches_the_recorded_hashes():
    """Hash-checking mode: the wheels pip downloaded are the files requirements.txt names (sha256)."""
    import hashlib

    from cloudlab.containers.context import PYTHON_VERSION

    req = (ASSETS / "requirements.txt").read_bytes()
    recorded = set(re.findall(r"sha256:([0-9a-f]{64})", req.decode()))
    folder = labdocker.cache_dir() / f"wheels-{hashlib.sha256(req + PYTHON_VERSION.encode()).hexdigest()[:10]}"
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        pytest.skip("no wheelhouse downloaded on this machine yet (lesson 05 makes one)")
    assert len(wheels) == len(recorded) == 7
    assert {hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels} == recorded


def test_base_image_build_says_how_long_it_takes(monkeypatch, capsys, tmp_path):
    """Issue 19 item 17: the first Run All of lesson 05 built the base image for minutes without a word."""
    lab = engmod.Lab.from_env()
    sock = labdocker.lab_socket(lab)
    monkeypatch.setattr(labdocker, "has_image", lambda env, tag: False)
    monkeypatch.setattr(labdocker, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(labdocker, "base_image", lambda env: labdocker.BASE_TAG)
    assert engmod._base_for(f"unix://{sock}", lab) == labdocker.BASE_TAG
    out = capsys.readouterr().out
    assert "building it once" in out and f"about {engmod.BASE_BUILD_SECONDS} s" in out and "base image ready in" in out


def test_private_index_accepts_only_a_token(tmp_path):
    script = ASSETS / "tools" / "private_index.py"
    bad = subprocess.run(["python3", str(script), "--token", "nope"], capture_output=True, text=True)
    assert bad.returncode != 0 and "401" in bad.stderr


def test_fake_tokens_look_real_and_differ():
    a, b = lesson05.fake_token(), lesson05.fake_token()
    assert a != b and re.fullmatch(r"ghp_[A-Za-z0-9]{36}", a)
    assert re.fullmatch(r"[0-9a-f]{8}", lesson05.fingerprint(a))


def test_stage_plants_a_developers_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUDLAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CLOUDLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(
        containers, "wheelhouse", lambda req, dest, show=True: (Path(dest).mkdir(parents=True), ["x.whl"])[1]
    )
    p = lesson05.stage("unit", dockerignore=False)
    assert (p.path / "app" / "service.py").read_text() == (lesson05.project.ROOT / "app" / "service.py").read_text()
    assert p.token in (p.path / ".env").read_text() and p.secret_file.read_text() == p.token
    assert not p.secret_file.is_relative_to(p.path), "the build secret lives outside the build context"
    assert oct(p.secret_file.stat().st_mode & 0o777) == "0o600"
    assert not (p.path / ".dockerignore").exists() and (p.path / "logs" / "debug.log").stat().st_size > 1e6
    shutil.rmtree(tmp_path / "state" / "work")  # what a test lab's start (or `make reset`) does
    again = lesson05.stage("unit", dockerignore=True)
    assert again.token == p.token, "a re-run keeps the token, so the build cache still applies"
    assert lesson05.stage("unit", new_token=True).token != p.token
    marker = again.change_code("marker-1")
    assert (again.path / "app" / "service.py").read_text().endswith("# marker-1\n") and marker == "marker-1"


# ================================================================== pure: the checks fail politely
def test_five_checks():
    assert sorted(k for k in REGISTRY if k.startswith("05.")) == ["05.1", "05.2", "05.3", "05.4", "05.5"]


@pytest.mark.parametrize(
    "check, ns, words",
    [
        (lesson05.check_layer_order, {}, "not defined yet"),
        (lesson05.check_layer_order, {"CACHED_DOCKERFILE": ["FROM x"]}, "should be a Dockerfile"),
        (lesson05.check_layer_order, {"CACHED_DOCKERFILE": "RUN echo"}, "no FROM line"),
        (lesson05.check_multistage, {"MULTISTAGE_DOCKERFILE": ""}, "no FROM line"),
        (lesson05.check_run_flags, {"RUN_FLAGS": "--read-only --cap-drop ALL"}, "should be a list"),
        (lesson05.check_run_flags, {"RUN_FLAGS": []}, "non-empty list of strings"),
        (lesson05.check_run_flags, {"RUN_FLAGS": ["--read-only", 7]}, "non-empty list of strings"),
        (lesson05.check_run_flags, {"RUN_FLAGS": ["--privileged", "--read-only"]}, "--privileged"),
        (lesson05.check_run_flags, {"RUN_FLAGS": ["--cap-drop", "ALL", "--cap-add", "SYS_ADMIN"]}, "--cap-add"),
        (lesson05.check_run_flags, {"RUN_FLAGS": ["--security-opt", "seccomp=unconfined"]}, "security profile"),
        (lesson05.check_no_secret, {"SECRET_DOCKERFILE": "FROM x"}, "`DOCKERIGNORE` is not defined"),
        (lesson05.check_final, {"FINAL_DOCKERFILE": 3}, "should be a Dockerfile"),
    ],
)
def test_checks_reject_wrong_shapes_before_touching_the_engine(check, ns, words):
    with pytest.raises(CheckFailed, match=re.escape(words)) as e:
        check(ns=ns)
    assert "Hint 1/" in str(e.value)


def test_checks_without_an_engine_say_how_to_get_one(monkeypatch):
    monkeypatch.setattr(containers, "answers", lambda eng=None: False)
    monkeypatch.setattr(containers, "connect", lambda quiet=False, start=True: None)
    with pytest.raises(CheckFailed, match="no Docker engine answers") as e:
        lesson05.check_run_flags(ns={"RUN_FLAGS": list(containers.HARDENED)})
    assert "Hint 1/3" in str(e.value)


# ================================================================== on the real engine
lab = pytest.mark.lab


@pytest.fixture(scope="module")
def engine():
    eng = containers.connect(quiet=True)
    if eng is None:
        pytest.skip("no Docker engine here (CI always has one)")
    return eng


def dockerfile(*lines: str) -> str:
    return "\n".join([BASE_LINE, *lines]) + "\n"


INSTALL = (
    "RUN python -m venv /opt/venv \\\n"
    " && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels -r requirements.txt"
)
BUILDER = ["FROM ${BASE} AS builder", "WORKDIR /app", "COPY requirements.txt ./", "COPY wheels/ /wheels/", INSTALL, ""]
CMD = 'CMD ["/opt/venv/bin/python", "-m", "app.service"]'
CACHED = dockerfile(
    "FROM ${BASE}",
    "WORKDIR /app",
    "COPY requirements.txt ./",
    "COPY wheels/ /wheels/",
    INSTALL,
    "COPY app/ ./app/",
    CMD,
)
MULTI = dockerfile(
    *BUILDER,
    "FROM ${BASE} AS runtime",
    "WORKDIR /app",
    "COPY --from=builder /opt/venv /opt/venv",
    "COPY app/ ./app/",
    CMD,
)


# ------------------------------------------------------------------ 05.1
@lab
def test_layer_order_solution_passes(engine):
    lesson05.check_layer_order(ns={"CACHED_DOCKERFILE": CACHED})


@lab
@pytest.mark.parametrize(
    "body, words",
    [
        (  # everything copied before the install
            f"FROM ${{BASE}}\nWORKDIR /app\nCOPY . .\n{INSTALL.replace('/wheels', 'wheels')}\n"
            'CMD ["/opt/venv/bin/python", "-m", "app.service"]',
            "ran again",
        ),
        (  # the code copied before the install
            f"FROM ${{BASE}}\nWORKDIR /app\nCOPY requirements.txt ./\nCOPY app/ ./app/\nCOPY wheels/ /wheels/\n"
            f'{INSTALL}\nCMD ["/opt/venv/bin/python", "-m", "app.service"]',
            "ran again",
        ),
        (  # no install at all: fast, and useless
            'FROM ${BASE}\nWORKDIR /app\nCOPY app/ ./app/\nCMD ["python", "-m", "app.service"]',
            "no RUN step installs the dependencies",
        ),
        (  # install from the network
            'FROM ${BASE}\nWORKDIR /app\nRUN python -c "import urllib.request; '
            "urllib.request.urlopen('https://pypi.org/simple/boto3/')\"\nCOPY app/ ./app/",
            "needs the network",
        ),
        ("FROM ${BASE}\nWORKDIR /app\nCOPPY app/ ./app/", "syntax error"),
        (  # more than asked: the install is cached, but `COPY . .` ships the developer's folder (issue 21, pattern 2)
            f"FROM ${{BASE}}\nWORKDIR /app\nCOPY requirements.txt ./\nCOPY wheels/ /wheels/\n{INSTALL}\nCOPY . .\n"
            'CMD ["/opt/venv/bin/python", "-m", "app.service"]',
            "the developer's folder",
        ),
    ],
)
def test_layer_order_wrong_answers(engine, body, words):
    rejected(lesson05.check_layer_order, {"CACHED_DOCKERFILE": BASE_LINE + "\n" + body + "\n"}, words)


# ------------------------------------------------------------------ 05.2
@lab
def test_multistage_solution_passes(engine):
    lesson05.check_multistage(ns={"MULTISTAGE_DOCKERFILE": MULTI})


@lab
@pytest.mark.parametrize(
    "text, words",
    [
        (CACHED, ("only one stage", "wheel file")),  # a single stage
        (MULTI.replace("COPY --from=builder /opt/venv /opt/venv", "COPY --from=builder / /"), ("wheel file",)),
        (MULTI.replace("FROM ${BASE} AS runtime", "FROM builder AS runtime"), ("starts FROM builder", "wheel file")),
        (  # the toolchain carried over on purpose
            MULTI.replace("COPY app/ ./app/", "COPY --from=builder /wheels /wheels\nCOPY app/ ./app/"),
            ("wheel file", "over the budget"),
        ),
        (MULTI.replace("COPY --from=builder /opt/venv /opt/venv\n", ""), ("does not serve /health",)),
        (MULTI.replace("COPY app/ ./app/", "COPY . ."), ("the developer's folder", "wheel file")),
    ],
)
def test_multistage_wrong_answers(engine, text, words):
    rejected(lesson05.check_multistage, {"MULTISTAGE_DOCKERFILE": text}, *words)


# ------------------------------------------------------------------ 05.3
SOLUTION_FLAGS = [
    "--user", "10001:10001", "--read-only", "--tmpfs", "/tmp:rw,noexec,nosuid,size=16m", "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges", "--memory", "128m", "--pids-limit", "64",
]  # fmt: skip


def replaced(flags, name, value):
    out = list(flags)
    out[out.index(name) + 1] = value
    return out


def without(flags, *names):
    out, skip = [], 0
    for f in flags:
        if skip:
            skip -= 1
            continue
        if f in names:
            skip = 0 if f == "--read-only" else 1
            continue
        out.append(f)
    return out


@lab
def test_run_flags_solution_passes(engine):
    lesson05.check_run_flags(ns={"RUN_FLAGS": SOLUTION_FLAGS})


@lab
@pytest.mark.parametrize(
    "flags, words",
    [
        (without(SOLUTION_FLAGS, "--user"), ("runs as root",)),
        (without(SOLUTION_FLAGS, "--cap-drop") + ["--cap-drop", "NET_RAW"], ("can still hold 13 capabilities",)),
        (without(SOLUTION_FLAGS, "--tmpfs"), ("/tmp is not writable",)),
        (without(SOLUTION_FLAGS, "--read-only"), ("the root filesystem is writable: --read-only",)),
        (without(SOLUTION_FLAGS, "--memory", "--pids-limit"), ("memory is not capped", "processes is not capped")),
        (without(SOLUTION_FLAGS, "--security-opt"), ("no-new-privileges is not set",)),
        (SOLUTION_FLAGS[:-4] + ["--memory", "6m", "--pids-limit", "64"], ("does not answer /health",)),
        # a user by name where a numeric UID was asked (issue 21, pattern 4)
        (replaced(SOLUTION_FLAGS, "--user", "nobody"), ("a name, not a number",)),
        # a UID without a group: the process stays in root's group
        (replaced(SOLUTION_FLAGS, "--user", "10001"), ("group 0",)),
        # the tmpfs without the options that make it small and inert (issue 20, lower 05 items)
        (replaced(SOLUTION_FLAGS, "--tmpfs", "/tmp"), ("no size= option",)),
        (replaced(SOLUTION_FLAGS, "--tmpfs", "/tmp:rw,exec,size=16m"), ("a script written to /tmp runs",)),
        # more than asked: the host's filesystem mounted in (issue 21, pattern 2)
        (SOLUTION_FLAGS + ["-v", "/:/host:ro"], ("bind mount",)),
    ],
)
def test_run_flags_wrong_answers(engine, flags, words):
    rejected(lesson05.check_run_flags, {"RUN_FLAGS": flags}, *words)


# ------------------------------------------------------------------ 05.4
IGNORE = "*\n!app/\n!tools/\n!wheels/\n!requirements.txt\n"
FIXED_TOKEN = lesson05.fake_token()  # a token of another day: what a learner who copied today's token types in
SECRET_RUN = (
    "RUN --mount=type=secret,id=index_token,required=true \\\n"
    "    /opt/venv/bin/python tools/private_index.py --token-file /run/secrets/index_token"
)
SECRET = CACHED.replace("COPY app/ ./app/", f"COPY tools/ ./tools/\n{SECRET_RUN}\nCOPY app/ ./app/")


@lab
def test_no_secret_solution_passes(engine):
    lesson05.check_no_secret(ns={"SECRET_DOCKERFILE": SECRET, "DOCKERIGNORE": IGNORE})


@lab
@pytest.mark.parametrize(
    "text, ignore, words",
    [
        (  # the classic: copied in, deleted later
            CACHED.replace(
                "COPY app/ ./app/",
                "COPY tools/ ./tools/\nCOPY .env /tmp/build.env\nRUN set -a && . /tmp/build.env && "
                '/opt/venv/bin/python tools/private_index.py --token "$INDEX_TOKEN"\nRUN rm /tmp/build.env\n'
                "COPY app/ ./app/",
            ),
            "logs/\n",
            ("lets .env into the build context", "the token is in the image", "COPY .env"),
        ),
        (  # the secret mounted, then kept
            CACHED.replace(
                "COPY app/ ./app/",
                "COPY tools/ ./tools/\nRUN --mount=type=secret,id=index_token cp /run/secrets/index_token "
                "/app/.token && /opt/venv/bin/python tools/private_index.py --token-file /app/.token\n"
                "COPY app/ ./app/",
            ),
            IGNORE,
            ("the token is in the image", "/app/.token"),
        ),
        (  # a build argument instead of a secret: the check never passes one, so the index refuses
            CACHED.replace(
                "COPY app/ ./app/",
                "COPY tools/ ./tools/\nARG INDEX_TOKEN\n"
                'RUN /opt/venv/bin/python tools/private_index.py --token "$INDEX_TOKEN"\nCOPY app/ ./app/',
            ),
            IGNORE,
            ("does not build", "401 Unauthorized"),
        ),
        (CACHED, IGNORE, ("private package is not installed",)),  # skipping the step instead of fixing it
        (SECRET.replace("id=index_token", "id=token"), IGNORE, ("build secret",)),
        (SECRET, "logs/\n", ("lets .env into the build context",)),
        # a rule for `.env` alone: the next .env file walks in (a file the notebook never made)
        (SECRET, IGNORE.replace("*\n", "logs/\n.env\n"), ("lets .env.production into the build context",)),
        # today's token typed into the Dockerfile: the check builds with a fresh one (issue 21, pattern 1)
        (
            CACHED.replace(
                "COPY app/ ./app/",
                f"COPY tools/ ./tools/\nRUN /opt/venv/bin/python tools/private_index.py --token {FIXED_TOKEN}\n"
                "COPY app/ ./app/",
            ),
            IGNORE,
            ("holds another token",),
        ),
    ],
)
def test_no_secret_wrong_answers(engine, text, ignore, words):
    rejected(lesson05.check_no_secret, {"SECRET_DOCKERFILE": text, "DOCKERIGNORE": ignore}, *words)


# ------------------------------------------------------------------ 05.5
FINAL = "# checkov:skip=CKV_DOCKER_7: FROM uses ARG BASE, whose default is pinned by sha256 digest\n" + dockerfile(
    *BUILDER,
    "FROM ${BASE} AS runtime",
    "ENV PATH=/opt/venv/bin:$PATH",
    "WORKDIR /app",
    "COPY --from=builder /opt/venv /opt/venv",
    "COPY healthcheck.py ./",
    "COPY app/ ./app/",
    "USER 10001:10001",
    'HEALTHCHECK --interval=10s CMD ["python", "/app/healthcheck.py"]',
    'CMD ["python", "-m", "app.service"]',
)
FINAL_WRONG = {
    "no-user": FINAL.replace("USER 10001:10001\n", ""),
    "user-too-early": FINAL.replace("USER 10001:10001\n", "").replace(
        "FROM ${BASE} AS builder\n", "FROM ${BASE} AS builder\nUSER 10001:10001\n"
    ),
    "chmod-777": FINAL.replace("USER 10001:10001\n", "RUN chmod -R 777 /app\nUSER 10001:10001\n"),
    "healthcheck-true": FINAL.replace('CMD ["python", "/app/healthcheck.py"]', "CMD true"),
    "suppressed-hadolint": FINAL.replace(
        INSTALL,
        "ENV PATH=/opt/venv/bin:$PATH\n# hadolint ignore=DL3042\n"
        "RUN python -m venv /opt/venv && pip install --no-index --find-links /wheels -r requirements.txt",
    ),
    "suppressed-user": FINAL.replace("USER 10001:10001\n", "").replace(
        "# checkov:skip=CKV_DOCKER_7",
        "# checkov:skip=CKV_DOCKER_3: we trust the platform\n# checkov:skip=CKV_DOCKER_7",
    ),
    "unpinned-base": FINAL.replace(lesson05.PINNED_BASE, "python:3.11-slim"),
    # a user by name where a numeric one was asked (issue 21, pattern 4)
    "user-by-name": FINAL.replace("USER 10001:10001", "USER nobody"),
    # the code owned by the service's user where root-owned was asked (issue 21, pattern 4)
    "code-owned-by-service": FINAL.replace("COPY app/ ./app/", "COPY --chown=10001:10001 app/ ./app/"),
    # a version-like base tag with the digest-only suppression (issue 21, patterns 3 and 4)
    "version-tag-base": FINAL.replace(lesson05.PINNED_BASE, "python:3.11.9-slim-bookworm"),
}
FINAL_WORDS = {
    "no-user": ("CKV_DOCKER_3", "runs as root: USER"),
    "user-too-early": ("does not build", "USER line placed before"),
    "chmod-777": ("world-writable", "no chmod 777"),
    "healthcheck-true": ("passes even with no service running",),
    "suppressed-hadolint": ("DL3042", "hadolint ignore comment"),
    "suppressed-user": ("suppressions that hide a finding: CKV_DOCKER_3",),
    "unpinned-base": ("CKV_DOCKER_7 is accepted only when ARG BASE is pinned",),
    "user-by-name": ("USER nobody", "numeric UID:GID"),
    "code-owned-by-service": ("belong to the service's own user",),
    "version-tag-base": ("CKV_DOCKER_7 is accepted only when ARG BASE is pinned",),
}


@pytest.fixture(scope="module")
def checkov_batch(engine, tmp_path_factory):
    """checkov takes ~10 s to start: scan the solution and every wrong answer in ONE real run, then hand each
    check the findings of its own file (the check's code path is unchanged; only the scan is shared)."""
    d = tmp_path_factory.mktemp("checkov-batch")
    cases = {"solution": FINAL, **FINAL_WRONG}
    for name, text in cases.items():
        (d / f"Dockerfile.{name}").write_text(text)
    report = scanners.checkov(d, "dockerfile", quiet=True, lesson="05")
    by_text = {}
    for name, text in cases.items():
        res = f"/Dockerfile.{name}"
        pick = [(c, r.replace(res, "/Dockerfile"), n) for c, r, n in report["failed"] if r.startswith(res + ".")]
        skip = [(c, r.replace(res, "/Dockerfile"), w) for c, r, w in report["skipped"] if r.startswith(res + ".")]
        by_text[text if text.endswith("\n") else text + "\n"] = dict(report, failed=pick, skipped=skip)
    return by_text


@pytest.fixture
def shared_checkov(checkov_batch, monkeypatch):
    def fake(path, framework="terraform", quiet=False, timeout=120.0, lesson=""):
        return checkov_batch[(Path(path) / "Dockerfile").read_text()]

    monkeypatch.setattr(lesson05.shipping.scanners, "checkov", fake)


@lab
def test_final_solution_passes(engine, shared_checkov):
    lesson05.check_final(ns={"FINAL_DOCKERFILE": FINAL})


@lab
@pytest.mark.parametrize("case", sorted(FINAL_WRONG))
def test_final_wrong_answers(engine, shared_checkov, case):
    rejected(lesson05.check_final, {"FINAL_DOCKERFILE": FINAL_WRONG[case]}, *FINAL_WORDS[case])


# ------------------------------------------------------------------ the toolkit on the real engine
@lab
def test_build_failures_raise_with_the_reason(engine, tmp_path):
    (tmp_path / "Dockerfile").write_text("ARG BASE=x\nFROM ${BASE}\nCOPPY a b\n")
    with pytest.raises(containers.BuildFailed) as e:
        containers.build(tmp_path, "l05-unit:broken", show=False, lesson="05")
    assert "syntax error" in str(e.value) and e.value.build.ok is False
    b = containers.build(tmp_path, "l05-unit:broken", show=False, check=False, lesson="05")
    assert not b.ok and "COPPY" in b.error


@lab
def test_reset_removes_the_lessons_containers_and_images(engine, tmp_path):
    (tmp_path / "Dockerfile").write_text(f'{BASE_LINE}\nFROM ${{BASE}}\nCMD ["sleep", "30"]\n')
    containers.build(tmp_path, "l05-unit:reset", show=False, lesson="05")
    containers.docker("run", "-d", "--name", "l05-unit-reset", "--network", "none", "--label",
                      "cloudlab.lesson=05", "l05-unit:reset", check=True)  # fmt: skip
    removed = lesson05.project._remove_containers_and_images()
    assert "l05-unit-reset" in removed["containers"] and "l05-unit:reset" in removed["images"]
    assert containers.inspect("l05-unit:reset") is None


@lab
def test_a_port_held_by_an_old_container_is_freed_and_a_foreign_one_is_named(engine, tmp_path):
    (tmp_path / "Dockerfile").write_text(
        f'{BASE_LINE}\nFROM ${{BASE}}\nCMD ["python", "-m", "http.server", "--bind", "127.0.0.1"]\n'
    )
    containers.build(tmp_path, "l05-unit:http", show=False, lesson="05")
    port = net.free_port()
    cmd = ["python", "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    old = containers.run("l05-unit:http", "l05-unit-old", port=port, lesson="05", command=cmd, wait="/",
                         aws=False, show=False)  # fmt: skip
    new = containers.run("l05-unit:http", "l05-unit-new", port=port, lesson="05", command=cmd, wait="/",
                         aws=False, show=False)  # fmt: skip
    assert new.running() and not old.inspect(), "the old container holding the port was removed"
    new.remove()
    with socket_on_port() as held:
        with pytest.raises(containers.ContainerFailed, match=f"ss -ltnp 'sport = :{held}'"):
            containers.run("l05-unit:http", "l05-unit-new", port=held, lesson="05", aws=False, show=False)
    containers.docker("rmi", "-f", "l05-unit:http")


class socket_on_port:
    def __enter__(self):
        import socket

        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen()
        return self.s.getsockname()[1]

    def __exit__(self, *exc):
        self.s.close()


@lab
def test_saved_layers_keep_a_deleted_file(engine, tmp_path):
    token = lesson05.fake_token()
    (tmp_path / "t.env").write_text(f"TOKEN={token}\n")
    (tmp_path / "Dockerfile").write_text(f"{BASE_LINE}\nFROM ${{BASE}}\nCOPY t.env /tmp/t.env\nRUN rm /tmp/t.env\n")
    containers.build(tmp_path, "l05-unit:leak", show=False, lesson="05")
    saved = containers.save("l05-unit:leak", tmp_path / "save", base=engine.base, show=False)
    where = saved.find(token)
    assert len(where) == 1 and "COPY t.env" in where[0]
    out = saved.extract(tmp_path / "layers")
    scan = scanners.detect_secrets(tmp_path / "layers", quiet=True, all_files=True)
    assert any(x["type"] == "GitHub Token" for x in scan["findings"]) and scan["files"] >= 1 and scan["detectors"] > 5
    assert any(name.endswith(".wh.t.env") for layer in saved.layers for name, _ in saved.layer_members(layer))
    assert out["files"] >= 1
    containers.docker("rmi", "-f", "l05-unit:leak")


@lab
def test_build_orders_gives_the_release_image_with_a_source_hash_tag(engine):
    """The release image itself. That make cluster and lesson 08's pipeline get this very digest is proved in
    tests/test_lesson08.py::test_one_image_reaches_make_cluster_and_the_pipeline."""
    b = lesson05.build_orders(show=False)
    assert re.fullmatch(r"cloudlab/orders:[0-9a-f]{12}", b.tag) and b.ok
    info = containers.inspect(b.tag)
    assert info["Config"]["User"] == "10001:10001" and info["Config"]["Healthcheck"]["Test"][0] == "CMD"
    assert info["Config"]["Labels"]["cloudlab.lesson"] == "05"
    assert lesson05.build_orders(show=False).tag == b.tag, "same sources, same tag"


def test_no_leftover_docker_state_in_the_repository():
    assert not list(lesson05.ASSETS.rglob(".checkov.json")), "scans run on copies, never in lessons/"
    assert os.path.exists(lesson05.ASSETS / "orders" / "Dockerfile")


def test_reset_tolerates_a_bucket_that_is_already_gone():
    """A small change to cloudlab.cleanup (lesson 05's reset met it): DeleteBucket retried after a late
    answer finds NoSuchBucket; the bucket is gone, which is what the reset wanted."""
    from botocore.exceptions import ClientError

    from cloudlab import cleanup

    class NoSuchBucket(ClientError):
        pass

    class FakeS3:
        exceptions = type("E", (), {"NoSuchBucket": NoSuchBucket})
        deleted: list[str] = []

        def get_paginator(self, name):
            return type("P", (), {"paginate": lambda self, Bucket: [{"Versions": []}]})()

        def delete_bucket(self, Bucket):
            raise NoSuchBucket({"Error": {"Code": "NoSuchBucket", "Message": "gone"}}, "DeleteBucket")

    cleanup.empty_and_delete_bucket(FakeS3(), "l05-orders")  # no exception
