"""Lesson 05: a plausible wrong answer per task, run before the solution in the same kernel."""

ATTEMPTS = {
    # Everything copied before the install: a one-line code change reinstalls every dependency.
    "05.1": '''
CACHED_DOCKERFILE = BASE_LINE + """
FROM ${BASE}
WORKDIR /app
COPY . .
RUN python -m venv /opt/venv \\\\
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links wheels -r requirements.txt
CMD ["/opt/venv/bin/python", "-m", "app.service"]
"""
''',
    # The runtime stage starts from the builder: it inherits the wheelhouse and everything else.
    "05.2": '''
MULTISTAGE_DOCKERFILE = BASE_LINE + """
FROM ${BASE} AS builder
WORKDIR /app
COPY requirements.txt ./
COPY wheels/ /wheels/
RUN python -m venv /opt/venv \\\\
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels -r requirements.txt

FROM builder AS runtime
COPY app/ ./app/
CMD ["/opt/venv/bin/python", "-m", "app.service"]
"""
''',
    # The user by name: not root, but nothing a platform can verify, and whatever /etc/passwd says it is.
    "05.3": """
RUN_FLAGS = [
    "--user", "nobody",
    "--read-only", "--tmpfs", "/tmp:rw,noexec,nosuid,size=16m",
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
    "--memory", "128m",
    "--pids-limit", "64",
]
""",
    # A deny-list with `.env` alone (the next .env file walks in), with an otherwise right Dockerfile.
    "05.4": '''
DOCKERIGNORE = """
.env
logs/
"""
SECRET_DOCKERFILE = BASE_LINE + """
FROM ${BASE}
WORKDIR /app
COPY requirements.txt ./
COPY wheels/ /wheels/
RUN python -m venv /opt/venv \\\\
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels -r requirements.txt
COPY tools/ ./tools/
RUN --mount=type=secret,id=index_token,required=true \\\\
    /opt/venv/bin/python tools/private_index.py --token-file /run/secrets/index_token
COPY app/ ./app/
CMD ["/opt/venv/bin/python", "-m", "app.service"]
"""
''',
    # The code given to the service's user: it could rewrite itself (the task says root-owned).
    "05.5": '''
FINAL_DOCKERFILE = """
# checkov:skip=CKV_DOCKER_7: FROM uses ARG BASE, whose default is pinned by sha256 digest
""" + BASE_LINE + """
FROM ${BASE} AS builder
WORKDIR /app
COPY requirements.txt ./
COPY wheels/ /wheels/
RUN python -m venv /opt/venv \\\\
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels -r requirements.txt

FROM ${BASE} AS runtime
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY healthcheck.py ./
COPY --chown=10001:10001 app/ ./app/
USER 10001:10001
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["python", "/app/healthcheck.py"]
CMD ["python", "-m", "app.service"]
"""
''',
}
