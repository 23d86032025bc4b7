#!/usr/bin/env bash
# Builds the real Dockerfile without a Docker engine and drains a flow run
# inside the image:
#   1. a Debian 12 base made by mmdebstrap, loaded into buildah as
#      localhost/debian:bookworm-slim (the Dockerfile's
#      PREFECT_CYCLE_BASE_IMAGE);
#   2. buildah bud --isolation chroot of the Dockerfile;
#   3. against a local Prefect server on 127.0.0.1: `prefect-cycle doctor` and
#      a cycle that drains one due run to COMPLETED, run inside the image; the
#      image's user must not be root, the image carries its OCI labels and no
#      apt lists, pip cache, compilers or headers.
# The Dockerfile's default base is the public debian:bookworm-slim; this test
# changes it only through --build-arg PREFECT_CYCLE_BASE_IMAGE (no registry is
# reached).
# Prints the image and binary sizes and the size of each layer. Needs root
# (buildah, chroot isolation).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

STORAGE=${CONTAINER_STORAGE_DRIVER:-vfs}
IMAGE=localhost/prefect-cycle:test
BASE=localhost/debian:bookworm-slim
bh=(buildah --storage-driver "$STORAGE")

need=()
for p in buildah mmdebstrap uidmap; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "container-test: installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
bash scripts/setup.sh >/dev/null

# One line per layer of image $1: its uncompressed size (containers/storage's
# diff-size) and the instruction that made it.
layer_sizes() {
  local graphroot
  graphroot=$("${bh[@]}" info --format '{{.store.GraphRoot}}' 2>/dev/null) || graphroot=/var/lib/containers/storage
  "${bh[@]}" inspect --type image "$1" | python3 -c '
import json, sys
image = json.load(sys.stdin)
try:
    with open(sys.argv[1]) as f:
        sizes = {l.get("diff-digest"): l.get("diff-size") for l in json.load(f)}
except OSError as e:
    sys.exit(f"layer sizes unavailable: {e}")
history = [h for h in image["OCIv1"]["history"] if not h.get("empty_layer")]
for diff, h in zip(image["OCIv1"]["rootfs"]["diff_ids"], history):
    size = sizes.get(diff)
    how = " ".join(h.get("created_by", "").split())
    how = how.split("/bin/sh -c ", 1)[-1]  # without the build arguments
    print(f"{size / 1e6:8.1f} MB  {how[:100]}" if size is not None else f"       ?    {how[:100]}")
' "$graphroot/$STORAGE-layers/layers.json"
}

t0=$(date +%s)
if ! "${bh[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
  echo "container-test: making the Debian 12 base with mmdebstrap"
  work=$(mktemp -d)
  mmdebstrap --quiet --variant=minbase bookworm "$work/base.tar"
  ctr=$("${bh[@]}" from scratch)
  mnt=$("${bh[@]}" mount "$ctr")
  tar -C "$mnt" -xf "$work/base.tar"
  "${bh[@]}" umount "$ctr" >/dev/null
  "${bh[@]}" commit --quiet "$ctr" "$BASE" >/dev/null
  "${bh[@]}" rm "$ctr" >/dev/null
  rm -rf "$work"
fi
t1=$(date +%s)

echo "container-test: building $IMAGE"
# pip inside the build trusts the same CA bundle as pip here (PIP_CERT), for
# networks that intercept TLS.
bud_extra=()
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
  bud_extra=(--volume "$PIP_CERT:/run/host-ca.crt:ro"
             --build-arg PREFECT_CYCLE_PIP_CERT=/run/host-ca.crt)
fi
"${bh[@]}" bud --quiet --layers --isolation chroot \
  --build-arg PREFECT_CYCLE_BASE_IMAGE="$BASE" "${bud_extra[@]}" \
  -t "$IMAGE" . >/dev/null
t2=$(date +%s)

# The previous build of the tag is left untagged: drop it (vfs stores full copies).
"${bh[@]}" rmi --prune >/dev/null 2>&1 || true
image_size=$("${bh[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' | awk -v i="$IMAGE" '$1 == i {print $2, $3}')
ctr=$("${bh[@]}" from --quiet "$IMAGE")
cleanup() {
  "${bh[@]}" rm "$ctr" >/dev/null 2>&1 || true
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "${tmp:-}" ] && rm -rf "$tmp"
}
trap cleanup EXIT
mnt=$("${bh[@]}" mount "$ctr")
binary_size=$(stat -c %s "$mnt/usr/local/bin/prefect-cycle")
rootfs_size=$(du -sb "$mnt" | cut -f1)
if find "$mnt/usr/bin" -name 'g++*' -o -name 'cc1plus' | grep -q . || [ -d "$mnt/usr/include/curl" ]; then
  echo "container-test: FAIL: the runtime stage has compilers or headers" >&2
  exit 1
fi
leftovers=$(find "$mnt/var/lib/apt/lists" -mindepth 1 -maxdepth 1 ! -name lock ! -name partial 2>/dev/null
            find "$mnt/root/.cache" "$mnt/home/prefect/.cache" -maxdepth 1 -name pip 2>/dev/null || true)
if [ -n "$leftovers" ]; then
  echo "container-test: FAIL: the image keeps apt lists or pip's cache: $leftovers" >&2
  exit 1
fi
"${bh[@]}" umount "$ctr" >/dev/null

uid=$("${bh[@]}" run --isolation chroot "$ctr" -- id -u)
if [ "$uid" = "0" ]; then
  echo "container-test: FAIL: the image runs as root" >&2
  exit 1
fi
labels=$("${bh[@]}" inspect --type image "$IMAGE" \
  | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["OCIv1"]["config"].get("Labels") or {}, separators=(",", ":")))')
want_version=$(sed -n 's/^project(prefect-cycle VERSION \([^ ]*\).*/\1/p' CMakeLists.txt)
for want in '"org.opencontainers.image.title":"prefect-cycle"' '"org.opencontainers.image.licenses":"Apache-2.0"' \
            "\"org.opencontainers.image.version\":\"$want_version\""; do
  case "$labels" in
    *"$want"*) ;;
    *) echo "container-test: FAIL: label $want missing from $labels" >&2; exit 1 ;;
  esac
done

# A local Prefect server with one due run of a deployment whose code lives in
# a directory mounted into the container at the same path.
tmp=$(mktemp -d /tmp/pc-container.XXXXXX)
chmod 755 "$tmp"
port=$("$root/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PREFECT_HOME="$tmp/home" PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_UI_ENABLED=false \
  "$root/.venv/bin/prefect" server start --host 127.0.0.1 --port "$port" >"$tmp/server.log" 2>&1 &
server_pid=$!
api="http://127.0.0.1:$port/api"
for _ in $(seq 1 120); do
  curl -fsS "$api/health" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "$api/health" >/dev/null || { tail -20 "$tmp/server.log"; exit 1; }
mkdir -p "$tmp/flows"
cp "$root/examples/demo_flow.py" "$tmp/flows/"
chmod -R a+rX "$tmp/flows"
run_id=$(PREFECT_API_URL="$api" "$root/.venv/bin/python" "$root/scripts/demo_setup.py" \
  --pool container-pool --flows-dir "$tmp/flows" --runs 1 --print-run-ids | tail -1)

run_in_image() {
  "${bh[@]}" run --isolation chroot --volume "$tmp/flows:$tmp/flows:ro" \
    --env PREFECT_API_URL="$api" --env PREFECT_WORK_POOL=container-pool \
    --env PREFECT_WAIT_POLL_SECONDS=1 "$ctr" -- /usr/local/bin/prefect-cycle "$@"
}
t3=$(date +%s)
run_in_image doctor
run_in_image run
t4=$(date +%s)

state=$(PREFECT_API_URL="$api" "$root/.venv/bin/python" - "$run_id" <<'PY'
import asyncio, sys
from prefect.client.orchestration import get_client
async def main():
    async with get_client() as c:
        r = await c.read_flow_run(sys.argv[1])
        print(r.state.type.value)
asyncio.run(main())
PY
)
if [ "$state" != "COMPLETED" ]; then
  echo "container-test: FAIL: flow run $run_id is $state, expected COMPLETED" >&2
  exit 1
fi
echo "container-test: layers of $IMAGE (uncompressed size, instruction):"
layer_sizes "$IMAGE" | sed 's/^/container-test:   /'
echo "container-test: image $IMAGE: user uid $uid, binary $binary_size bytes, rootfs $rootfs_size bytes, image size $image_size"
echo "container-test: base $((t1 - t0)) s, build $((t2 - t1)) s, run in image $((t4 - t3)) s; flow run $run_id COMPLETED"
echo "container-test: 1 passed, 0 failed in $(( $(date +%s) - t0 )) s"
