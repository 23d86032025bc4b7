# prefect-cycle: build stage with the -dev packages, runtime stage with only
# the shared libraries, CA certificates, git and a pinned Prefect for the flow
# runs (`python -m prefect.engine`).
ARG BASE_IMAGE=localhost/debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
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

FROM ${BASE_IMAGE}
ARG PREFECT_VERSION=3.8.8
# FastAPI 0.151+ breaks Prefect 3.8 (see scripts/setup.sh).
ARG FASTAPI_VERSION=0.150.0
# Behind a TLS-intercepting proxy: a CA bundle file visible to the build (e.g.
# buildah bud --volume /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro
# --build-arg PIP_CERT=/run/host-ca.crt). Empty: the image's own CA store.
ARG PIP_CERT=
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates git libcurl4 libgit2-1.5 libpq5 libspdlog1.10 libfmt9 \
      python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/prefect \
 && /opt/prefect/bin/pip install --no-cache-dir --disable-pip-version-check ${PIP_CERT:+--cert "$PIP_CERT"} \
      "prefect==${PREFECT_VERSION}" "fastapi==${FASTAPI_VERSION}" \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin prefect
COPY --from=build /src/build/prefect-cycle /usr/local/bin/prefect-cycle
ENV PATH=/opt/prefect/bin:$PATH \
    PREFECT_WORKER_PYTHON=/opt/prefect/bin/python \
    PREFECT_HOME=/home/prefect/.prefect
USER prefect
WORKDIR /home/prefect
# Exec form: SIGTERM from `docker stop` / Railway reaches the binary directly.
ENTRYPOINT ["/usr/local/bin/prefect-cycle"]
CMD ["run"]
