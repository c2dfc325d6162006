"""Lesson 05's exercise checks 05.4 (no secret in any layer) and 05.5 (the image you would ship: lint-clean,
numeric non-root USER over root-owned files, a health check that really probes). Like 05.1-05.3 (``checks``) they
build, run or save the REAL image in a fresh copy of the project, with fresh names and a fresh token."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .. import containers, net, scanners
from ..checks import check
from .checks import (
    DIGEST_PIN,
    LESSON,
    NUMERIC_USER,
    SCRATCH,
    _build,
    _cleanup,
    _dockerfile,
    _nonce,
    _require_engine,
)
from .project import PRIVATE_RECORD, SECRET_ID, backing_services, base_ref, fingerprint, stage, work_dir


# ------------------------------------------------------------------ 05.4 no secret in any layer
@check(
    "05.4",
    "No secret in any layer",
    hints=[
        "Two leaks to close: the .env file must not reach the build context, and the token must reach only "
        "the one RUN step that needs it, as a build secret.",
        "DOCKERIGNORE: exclude every .env file (.env*), or better allow only what you need. SECRET_DOCKERFILE: "
        "`RUN --mount=type=secret,id=index_token python tools/private_index.py --token-file /run/secrets/index_token`.",
        "Start from Dockerfile.cached; before COPY app/ add COPY tools/ ./tools/ and that RUN --mount line. Never "
        "COPY .env, never ARG or ENV the token, never write it to a file.",
    ],
)
def check_no_secret(r, ns):
    text = _dockerfile(r, ns, "SECRET_DOCKERFILE")
    ignore = r.need(ns, "DOCKERIGNORE", str, ".dockerignore (a string)")
    _require_engine(r)
    project = stage("check-4", dockerignore=False, junk=True, new_token=True)
    project.write(".dockerignore", ignore)
    (project.path / ".env.production").write_text(f"INDEX_TOKEN={project.token}\n")  # one the notebook never made
    rules = containers.parse_dockerignore(ignore)
    for env_file in (".env", ".env.production"):
        r.expect(
            containers.is_ignored(env_file, rules),
            f"DOCKERIGNORE keeps {env_file} out of the build context",
            f"DOCKERIGNORE lets {env_file} into the build context, so any `COPY . .` ships the token"
            + (
                ": a rule for `.env` alone misses every other .env file (`.env*`, or an allow-list)"
                if env_file != ".env"
                else ""
            ),
        )
    with open(project.path / "tools" / "private_index.py", "a") as fh:
        fh.write(f"# check {_nonce()}\n")  # a fresh file: the step that reads the secret really runs
    tag = f"l05-check4:{_nonce()}"
    _build(r, project, text, tag, "SECRET_DOCKERFILE", secrets=project.secrets)
    shown = containers.docker("run", "--rm", "--network", "none", "--entrypoint", "cat", tag, PRIVATE_RECORD)
    r.expect(
        fingerprint(project.token) in shown.stdout,
        "the build used the token (the private package is installed)",
        f"the private package is not installed with this build's token ({PRIVATE_RECORD} "
        f"{'is missing' if shown.returncode else 'holds another token'}): run tools/private_index.py with the build "
        f"secret, id={SECRET_ID}",
    )
    saved = containers.save(tag, work_dir() / "check-4-save", base=base_ref(), show=False)
    where = saved.find(project.token)
    r.expect(
        not where,
        f"the token is in none of the {len(saved.layers)} layers, the config or the history",
        "the token is in the image: " + "; ".join(where[:3]),
    )
    _cleanup(tag)
    saved.path.unlink(missing_ok=True)


# ------------------------------------------------------------------ 05.5 lint, non-root, health check
@check(
    "05.5",
    "Lint-clean, non-root, with a health check that really probes",
    hints=[
        "Fix what hadolint and checkov report (ignore comments do not count). The image needs a numeric "
        "non-root USER, placed after the steps that install, and a HEALTHCHECK that calls /health.",
        "pip install --no-cache-dir; USER 10001:10001 near the end (files stay root-owned, no chmod 777); "
        'HEALTHCHECK CMD ["python", "/app/healthcheck.py"] after COPY healthcheck.py ./.',
        "Start from the lesson's Dockerfile (multi-stage). The only accepted suppression is "
        "`# checkov:skip=CKV_DOCKER_7: <reason>` when ARG BASE is pinned by @sha256 digest.",
    ],
)
def check_final(r, ns):
    text = _dockerfile(r, ns, "FINAL_DOCKERFILE")
    _require_engine(r)
    scan_dir = work_dir() / "check-5-scan"
    scan_dir.mkdir(parents=True, exist_ok=True)
    (scan_dir / "Dockerfile").write_text(text if text.endswith("\n") else text + "\n")
    with ThreadPoolExecutor(1) as pool:
        scan = pool.submit(scanners.checkov, scan_dir, "dockerfile", True, 180.0, LESSON)
        lint = scanners.hadolint(scan_dir / "Dockerfile", quiet=True, lesson=LESSON, honour_ignores=False)
        r.expect(
            not lint["findings"],
            "hadolint: no finding",
            "hadolint: " + "; ".join(f"line {ln} {code} {msg[:70]}" for ln, code, _, msg in lint["findings"][:3]),
        )
        r.expect(
            not lint["ignores"],
            "no hadolint ignore comments",
            f"{len(lint['ignores'])} hadolint ignore comment(s): fix the finding instead",
        )
        project = stage("check-5", junk=False)
        tag = f"l05-check5:{_nonce()}"
        project.write("Dockerfile.check", text)
        built = project.build("Dockerfile.check", tag, show=False, check=False)
        report = scan.result()
    arg_pinned = any(DIGEST_PIN.search(ln) for ln in text.splitlines() if ln.strip().upper().startswith("ARG"))
    failed = list(report["failed"])
    skipped = [s for s in report["skipped"] if not (s[0] == "CKV_DOCKER_7" and arg_pinned and len(s[2].strip()) > 10)]
    r.expect(
        not failed,
        f"checkov: {report['passed']} checks passed, none failed",
        "checkov: " + "; ".join(f"{cid} {name[:60]}" for cid, _, name in failed[:3]),
    )
    r.expect(
        not skipped,
        "checkov: no suppression (except CKV_DOCKER_7 with a reason, the base being pinned by digest)",
        "checkov suppressions that hide a finding: "
        + ", ".join(s[0] for s in skipped)
        + ("" if arg_pinned else " (CKV_DOCKER_7 is accepted only when ARG BASE is pinned by @sha256 digest)"),
    )
    r.require(built.ok, "it builds", f"FINAL_DOCKERFILE does not build: {built.reason}.\n{built.error}")
    info = containers.inspect(tag) or {}
    cfg = info.get("Config", {})
    test = (cfg.get("Healthcheck") or {}).get("Test") or []
    r.expect(
        test and test[0] != "NONE",
        "the image has a HEALTHCHECK",
        "the image has no HEALTHCHECK: add one that calls the service's /health",
    )
    flags = [f for f in containers.HARDENED if f not in ("--user", "10001:10001")]
    name = f"l05-check5-{_nonce()}"
    c = containers.run(tag, name, flags=flags, env=backing_services(), lesson=LESSON, show=False, check=False)
    down = f"l05-check5-down-{_nonce()}"
    try:
        r.require(
            net.answers(c.url + "/health"),
            "it serves /health with a read-only root filesystem and no capabilities",
            f"it does not serve /health under --read-only and --cap-drop ALL. Its log: {c.logs(6)[-500:]}",
        )
        uid = c.proc_status().uid
        r.expect(uid != 0, f"without --user it runs as UID {uid} (its USER)", "without --user it runs as root: USER")
        user = str(cfg.get("User") or "")
        r.expect(
            NUMERIC_USER.fullmatch(user) is not None and not user.startswith("0"),
            f"USER {user}: numeric, so a platform can verify it is not root",
            f"USER {user or '(none)'}: give a numeric UID:GID (USER 10001:10001). A name means whatever /etc/passwd "
            "says, and Kubernetes' runAsNonRoot cannot verify a name: it refuses to start the pod",
        )
        owned = c.find("-user", str(uid)) if uid else []
        if owned is None:  # no `find` in the image: read the owners from its exported filesystem
            owned = [e.path for e in containers.files(tag, lesson=LESSON).values() if e.uid == uid]
        r.expect(
            not owned,
            "the code and the virtual environment are owned by root: the service cannot change them",
            f"{len(owned)} path(s) belong to the service's own user, e.g. {owned[0] if owned else ''}: it could "
            "rewrite its own code (COPY --chown or chown gives files away). Keep them root-owned; only USER changes",
        )
        probe = (["sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]) if test else ["false"]
        ok_up = c.exec(*probe).returncode == 0 if test and test[0] != "NONE" else False
        containers.docker(
            "run", "-d", "--name", down, "--network", "host", "--label", f"{containers.LABEL}={LESSON}",
            "-e", f"PORT={net.free_port()}", "--entrypoint", "sleep", tag, "60",
        )  # fmt: skip
        ok_down = containers.docker("exec", down, *probe).returncode == 0
        r.expect(
            ok_up and not ok_down,
            "the health check passes while the service answers and fails when it does not",
            "the health check passes even with no service running: it must call /health"
            if ok_down
            else "the health check fails although the service answers /health",
        )
        writable = c.find("-perm", "-0002", "!", "-type", "l")
        if writable is None:
            writable = [e.path for e in containers.files(tag, lesson=LESSON).values() if e.world_writable]
        open_paths = [p for p in writable if not p.startswith(SCRATCH)]
        r.expect(
            not open_paths,
            "nothing outside /tmp is world-writable",
            f"{len(open_paths)} world-writable path(s), e.g. {open_paths[0] if open_paths else ''}: no chmod 777; "
            "the code stays read-only and scratch goes to a tmpfs at run time",
        )
    finally:
        _cleanup(name, down, tag)
