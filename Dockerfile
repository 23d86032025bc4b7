# prefect-cycle: a build stage with the -dev packages, and a runtime stage with
# only the shared libraries, CA certificates, git (optional) and the Prefect
# client for the flow runs (`python -m prefect.engine`).
#
#   docker build -t prefect-cycle .
#
# Every build argument starts with PREFECT_CYCLE_: Railway passes each service
# variable to the ARG of the same name, so a variable such as VERSION or
# INSTALL_GIT set for the running cycle would change or break the build.
#
# PREFECT_CYCLE_BASE_IMAGE is a public reference that Docker, BuildKit and
# Railway pull from Docker Hub. It is a tag, not a digest: to pin it, look the digest up where you
# build and pass or write it here,
#   docker buildx imagetools inspect debian:bookworm-slim --format '{{json .Manifest.Digest}}'
#   PREFECT_CYCLE_BASE_IMAGE=debian:bookworm-slim@sha256:<that digest>
# and refresh it the same way when Debian publishes a point release or a
# security update (the tag moves, a digest does not). scripts/container-test.sh
# builds without a registry and passes its own mmdebstrap-made Debian 12 with
# --build-arg PREFECT_CYCLE_BASE_IMAGE=localhost/debian:bookworm-slim.
ARG PREFECT_CYCLE_BASE_IMAGE=debian:bookworm-slim

FROM ${PREFECT_CYCLE_BASE_IMAGE} AS build
# Debian 12's packages are not pinned (DL3008): a stable release only gets
# security and point updates, and the archive drops the old version when it
# publishes one, so a pinned version would break the build instead of updating.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates \
      libcurl4-openssl-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev \
      libgit2-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY src ./src
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
 && cmake --build build \
 && strip build/prefect-cycle

FROM ${PREFECT_CYCLE_BASE_IMAGE} AS runtime
# The image's version label; keep the default equal to CMakeLists.txt's
# project VERSION (tests/e2e/test_dockerfile.py checks it). CI passes a tag.
ARG PREFECT_CYCLE_VERSION=0.1.0
# The repository the image was built from (org.opencontainers.image.source).
# Empty by default: this project has no public home yet; CI passes it
# (examples/github-actions.yml: the workflow's own repository URL).
ARG PREFECT_CYCLE_SOURCE_URL=
# What the flow runs import. prefect-client is Prefect's client-only
# distribution: `python -m prefect.engine` runs a flow with it, without the
# server (SQLAlchemy, Alembic, the UI; about 200 MB less). The native worker
# (worker type `process`) needs nothing more. Prefect's worker CLI, which
# prefect-cycle starts for any other PREFECT_WORKER_TYPE, is not in it: build
# with --build-arg PREFECT_CYCLE_PREFECT_PACKAGE=prefect (plus that worker's
# package, e.g. prefect-docker) for those.
ARG PREFECT_CYCLE_PREFECT_PACKAGE=prefect-client
# prefect-client has no 3.9.1 release (PyPI, 2026-12-07; prefect has): its
# newest, 3.9.0, with the 3.9.1 server that scripts/setup.sh pins.
ARG PREFECT_CYCLE_PREFECT_VERSION=3.9.0
# uv installs the flows' requirements (PREFECT_CYCLE_INSTALLER=auto finds it
# beside /opt/prefect/bin/python); about 40 MB. pip stays for the fallback.
ARG PREFECT_CYCLE_UV_VERSION=0.13.9
# On by default: Prefect's `git_clone` pull step (the usual deployment made by
# `prefect deploy` from a git repository) runs the `git` command inside the flow
# run, and `prefect-cycle doctor` reports a missing git as a failure. git pulls
# in perl (about 60 MB). prefect-cycle's own repository preflight and code sync
# use libgit2 and do not need the command: with flows that are pulled some
# other way, --build-arg PREFECT_CYCLE_INSTALL_GIT=false makes the image
# smaller.
ARG PREFECT_CYCLE_INSTALL_GIT=true
# Behind a TLS-intercepting proxy: a CA bundle file visible to the build (e.g.
# buildah bud --volume /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro
# --build-arg PREFECT_CYCLE_PIP_CERT=/run/host-ca.crt). pip gets it as PIP_CERT
# (= --cert); empty: the image's own CA store.
ARG PREFECT_CYCLE_PIP_CERT=
LABEL org.opencontainers.image.title="prefect-cycle" \
      org.opencontainers.image.description="Drains a Prefect work pool on a schedule: resume, trigger, run-once worker, wait, pause." \
      org.opencontainers.image.source="${PREFECT_CYCLE_SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${PREFECT_CYCLE_VERSION}"
# The venv's pip and python first on PATH (also for the build: hadolint checks
# `pip install` only when it is called by that name).
ENV PATH=/opt/prefect/bin:$PATH \
    PREFECT_WORKER_PYTHON=/opt/prefect/bin/python \
    PREFECT_HOME=/home/prefect/.prefect
# One layer: the apt lists, pip's cache and the build's temporary files never
# reach the image. The packages come without documentation, manual pages and
# translations (the copyright files stay), as Docker Hub's debian:*-slim
# already configures dpkg. The venv belongs to the runtime user, so the cycle's
# preflight (`pip install -r requirements.txt`) can install a flow's packages.
# The venv keeps its compiled bytecode (__pycache__, about 45 MB): without it
# every flow run would compile Prefect again, a few seconds per run.
# Unpinned Debian packages: see the build stage (DL3008).
# hadolint ignore=DL3008
RUN printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
      'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' \
      'path-exclude=/usr/share/locale/*' >/etc/dpkg/dpkg.cfg.d/prefect-cycle-slim \
 && apt-get update \
 && case "$PREFECT_CYCLE_INSTALL_GIT" in \
      true) git=git ;; \
      false) git= ;; \
      *) echo "PREFECT_CYCLE_INSTALL_GIT must be true or false," \
              "not \"$PREFECT_CYCLE_INSTALL_GIT\"" >&2; exit 2 ;; \
    esac \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libcurl4 libgit2-1.5 libpq5 libspdlog1.10 libfmt9 \
      python3 python3-venv ${git:+"$git"} \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin prefect \
 && python3 -m venv /opt/prefect \
 && PIP_CERT="$PREFECT_CYCLE_PIP_CERT" pip install --no-cache-dir --disable-pip-version-check \
      "${PREFECT_CYCLE_PREFECT_PACKAGE}==${PREFECT_CYCLE_PREFECT_VERSION}" \
      "uv==${PREFECT_CYCLE_UV_VERSION}" \
 && chown -R 10001:10001 /opt/prefect
COPY --from=build /src/build/prefect-cycle /usr/local/bin/prefect-cycle
# Numeric: a runtime that enforces "run as non-root" (Kubernetes runAsNonRoot)
# can check it without reading /etc/passwd.
USER 10001:10001
WORKDIR /home/prefect
# Exec form: SIGTERM from `docker stop` / Railway reaches the binary directly.
ENTRYPOINT ["/usr/local/bin/prefect-cycle"]
CMD ["run"]
