#!/usr/bin/env bash
# Installs everything prefect-cycle needs to build, test and run its demo on a
# fresh Debian 12 machine: Debian packages with apt-get and a project venv
# (.venv) holding a pinned Prefect. Idempotent: a second run is fast.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

PREFECT_VERSION=${PREFECT_VERSION:-3.9.1}
# FastAPI 0.151+ answers 422 to the null fields Prefect's own client sends and
# 0.155+ stops Prefect 3.8's server from starting. Prefect 3.9 caps it itself
# (fastapi>=0.139,<0.151), so for 3.9.1 this pin only names the version the
# resolver picks anyway; it stays for PREFECT_VERSION=3.8.x, which does not.
FASTAPI_VERSION=${FASTAPI_VERSION:-0.150.0}

debian_packages=(
  build-essential cmake ninja-build pkg-config clang-format clang-tidy git
  libcurl4-openssl-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  catch2 libgit2-dev libpq-dev ca-certificates
  python3 python3-venv
  nginx fcgiwrap postgresql curl
  prometheus-pushgateway
  clang libclang-rt-14-dev
)

# kubectl renders the Kubernetes kustomization in the e2e suite: the machine
# image's own (Google's package) when present, else Debian's.
command -v kubectl >/dev/null 2>&1 || debian_packages+=(kubernetes-client)
# npm installs .railway/'s pinned Railway SDK, TypeScript and Node 22 (the
# SDK's engines; Debian 12 ships Node 18): the machine's own npm when present.
command -v npm >/dev/null 2>&1 || debian_packages+=(nodejs npm)

missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

venv="$root/.venv"
# A new pin in requirements-dev.txt makes a new stamp, so an existing venv
# gets it too.
req_hash=$(sha256sum "$root/scripts/requirements-dev.txt" | cut -c1-12)
stamp="$venv/.prefect-cycle-$PREFECT_VERSION-$FASTAPI_VERSION-$req_hash"
if [ ! -f "$stamp" ]; then
  echo "setup: creating $venv with prefect==$PREFECT_VERSION"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r "$root/scripts/requirements-dev.txt" \
    "prefect==$PREFECT_VERSION" "fastapi==$FASTAPI_VERSION"
  touch "$stamp"
fi
# .railway/node_modules from .railway/package-lock.json (tests/e2e/test_railway.py):
# again only when the lock file changes.
railway_stamp="$root/.railway/node_modules/.prefect-cycle-$(sha256sum "$root/.railway/package-lock.json" | cut -c1-12)"
if [ ! -f "$railway_stamp" ]; then
  echo "setup: npm ci in .railway (railway SDK, typescript, node 22)"
  (cd "$root/.railway" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$railway_stamp"
fi
echo "setup: ok ($("$venv/bin/python" -c 'import prefect; print("prefect", prefect.__version__)'))"
