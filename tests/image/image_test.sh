#!/usr/bin/env bash
# The container image test (ctest label `image`): builds the image with
# scripts/build-image.sh into $BUILD_DIR/image, then runs it the way a
# container runtime would — from the archive's own layer and config, as user
# 65532, with a read-only root filesystem, /tmp and the data volume as
# writable mounts, the chart's rendered config mounted at /etc/understudy, in
# private mount/PID/network namespaces — and checks:
#   - the archive: OCI layout, the name the chart installs by default
#     (Chart.yaml appVersion + values.yaml repository/tag), user, entrypoint,
#     HEALTHCHECK, labels, the SBOM and package lists;
#   - `understudy version` prints the chart's appVersion;
#   - `understudy check-config` accepts the chart's default config (rendered
#     from templates/configmap-understudy.yaml + values.yaml by
#     render_chart.py, since there is no helm here);
#   - `understudy serve` on that config starts, and the image's HEALTHCHECK
#     command succeeds against it; SIGTERM stops it cleanly;
#   - the same inputs gave the same digests as the previous build, if any;
#   - with podman installed: `podman load` names the image as the chart
#     expects, and `podman run` runs it where this machine can run containers.
# Prints the image size and build time. Exit 77 (skip) only when the Debian
# mirror is unreachable.
set -euo pipefail
export LC_ALL=C.UTF-8
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3

# --- inside the namespaces (the script runs itself there) -------------------
if [ "${1:-}" = --inside ]; then
  shift
  R=$1 CONFIG_DIR=$2 IMAGE_CONFIG=$3 LOGDIR=$4 SECRET_DIR=$5
  run() { "$PY" "$HERE/run_in_rootfs.py" "$IMAGE_CONFIG" "$R" "$@"; }
  mount --make-rprivate /
  mount --bind "$R" "$R"
  mount -o remount,bind,ro "$R"                                      # readOnlyRootFilesystem
  mount -t tmpfs -o mode=1777,size=64m tmpfs "$R/tmp"                # the tmp volume
  mount -t tmpfs -o mode=0750,uid=65532,gid=65532,size=256m tmpfs "$R/var/lib/understudy"  # data
  mount --bind "$CONFIG_DIR" "$R/etc/understudy"                     # the ConfigMap
  mount -o remount,bind,ro "$R/etc/understudy"
  mount --bind "$SECRET_DIR" "$R/etc/understudy-secrets/admin"       # the admin token Secret
  mount -o remount,bind,ro "$R/etc/understudy-secrets/admin"
  mount -t proc proc "$R/proc"
  mount -t tmpfs -o mode=0755,size=1m tmpfs "$R/dev"
  for d in null zero random urandom; do
    touch "$R/dev/$d" && mount --bind "/dev/$d" "$R/dev/$d"
  done
  ip link set lo up

  echo "--- understudy version"
  v=$(run version)
  echo "$v"
  [ "$v" = "understudy $APP_VERSION" ] || { echo "FAIL: expected 'understudy $APP_VERSION'"; exit 1; }

  echo "--- understudy check-config (the chart's default config)"
  run check-config /etc/understudy/understudy.yaml
  run check-config -o json /etc/understudy/understudy.yaml | grep -q '"ok":true'

  echo "--- the image cannot write outside its volumes"
  if "$PY" - "$R" <<'PY'
import os, sys
os.chroot(sys.argv[1]); os.setgid(65532); os.setuid(65532)
for p in ("/usr/bin/x", "/etc/x", "/x"):
    try:
        open(p, "w"); print("FAIL: wrote", p); sys.exit(1)
    except OSError:
        pass
for p in ("/tmp/x", "/var/lib/understudy/x"):
    open(p, "w").close(); os.remove(p)
PY
  then echo "read-only root, writable /tmp and /var/lib/understudy: ok"; else exit 1; fi

  echo "--- understudy serve (the image's default command, with the chart's args) + HEALTHCHECK"
  # Not through run(): $! must be the launcher, which execs understudy.
  "$PY" "$HERE/run_in_rootfs.py" "$IMAGE_CONFIG" "$R" serve --config /etc/understudy/understudy.yaml \
    >"$LOGDIR/serve.log" 2>&1 &
  serve=$!
  healthy=0
  for _ in $(seq 1 60); do
    # With the chart's environment: the CLI finds the admin token through
    # UNDERSTUDY_ADMIN_TOKEN_FILE (every call but /healthz needs it).
    if run --env UNDERSTUDY_ADMIN_TOKEN_FILE=/etc/understudy-secrets/admin/token --healthcheck \
        >"$LOGDIR/health.json" 2>"$LOGDIR/health.err"; then healthy=1; break; fi
    kill -0 "$serve" 2>/dev/null || break
    sleep 0.5
  done
  if [ "$healthy" != 1 ]; then
    echo "FAIL: the HEALTHCHECK never passed"; cat "$LOGDIR/health.err" "$LOGDIR/serve.log"
    kill "$serve" 2>/dev/null || true; exit 1
  fi
  "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$LOGDIR/health.json"
  echo "HEALTHCHECK ($(jq -c '.config.Healthcheck.Test[1:]' "$IMAGE_CONFIG" 2>/dev/null || echo status)): ok: $(head -c 160 "$LOGDIR/health.json")"
  [ -d "$R/var/lib/understudy/db" ] || { echo "FAIL: no RocksDB under the data volume"; exit 1; }
  kill -TERM "$serve"
  rc=0; wait "$serve" || rc=$?
  [ "$rc" = 0 ] || { echo "FAIL: serve exited $rc after SIGTERM"; tail -n20 "$LOGDIR/serve.log"; exit 1; }
  echo "SIGTERM: clean exit"
  exit 0
fi

# --- outside -----------------------------------------------------------------
T0=$(date +%s)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
OUT_DIR=$BUILD_DIR/image
CHART=$ROOT/charts/understudy
[ "$(id -u)" -eq 0 ] || { echo "image_test: needs root (mmdebstrap, chroot, namespaces)"; exit 1; }

# The Debian mirror is the one thing this test may lack: skip only for that.
if ! "$ROOT/scripts/build-image.sh" --check-mirror; then
  echo "image_test: SKIP: the Debian mirror is unreachable, so the image cannot be built"
  exit 77
fi

# Own packages, idempotently (also in scripts/install-deps.sh).
need=()
for p in mmdebstrap eatmydata python3 python3-yaml binutils iproute2 util-linux jq; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "image_test: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/understudy-image-test.XXXXXX")
cleanup() {
  for m in $(awk -v r="$TMP/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

APP_VERSION=$(sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1/p' "$CHART/Chart.yaml")
CHART_IMAGE=$("$PY" "$HERE/render_chart.py" "$CHART" --define understudy.image)
export APP_VERSION
echo "chart: appVersion $APP_VERSION, default image $CHART_IMAGE"

# Previous build's digests, to check reproducibility.
PREV=""
[ -f "$OUT_DIR/understudy-$APP_VERSION.digests" ] && PREV=$(cat "$OUT_DIR/understudy-$APP_VERSION.digests")

echo "=== scripts/build-image.sh"
B0=$(date +%s)
BUILD_DIR=$BUILD_DIR OUT_DIR=$OUT_DIR "$ROOT/scripts/build-image.sh"
BUILD_SECONDS=$(($(date +%s) - B0))
ARCHIVE=$OUT_DIR/understudy-$APP_VERSION.oci.tar
DIGESTS=$OUT_DIR/understudy-$APP_VERSION.digests
[ -f "$ARCHIVE" ] || { echo "FAIL: no $ARCHIVE (is the binary's version $APP_VERSION?)"; exit 1; }

echo "=== the archive"
mkdir -p "$TMP/oci" "$TMP/rootfs" "$TMP/config" "$TMP/logs"
tar -xf "$ARCHIVE" -C "$TMP/oci"
"$PY" - "$TMP/oci" "$CHART_IMAGE" "$APP_VERSION" "$OUT_DIR" "$TMP/image-config.json" "$TMP/layer" <<'PY'
import hashlib, json, os, sys
oci, chart_image, version, out, config_out, layer_out = sys.argv[1:]
def blob(d):
    algo, hexd = d.split(":")
    path = os.path.join(oci, "blobs", algo, hexd)
    data = open(path, "rb").read()
    assert hashlib.sha256(data).hexdigest() == hexd, "digest mismatch: " + d
    return path, data
def check(cond, what):
    if not cond:
        print("FAIL:", what); sys.exit(1)
check(json.load(open(os.path.join(oci, "oci-layout")))["imageLayoutVersion"] == "1.0.0", "oci-layout")
index = json.load(open(os.path.join(oci, "index.json")))
check(len(index["manifests"]) == 1, "one manifest")
desc = index["manifests"][0]
ref = desc["annotations"]["org.opencontainers.image.ref.name"]
check(ref == chart_image, "image name %s is what the chart installs (%s)" % (ref, chart_image))
check(desc["annotations"]["io.containerd.image.name"] == chart_image, "containerd name")
_, m = blob(desc["digest"])
manifest = json.loads(m)
_, c = blob(manifest["config"]["digest"])
config = json.loads(c)
cfg = config["config"]
check(cfg["User"] == "65532:65532", "non-root user 65532 (the chart's runAsUser)")
check(cfg["Entrypoint"] == ["/usr/bin/understudy"], "understudy as entrypoint")
check(cfg["Cmd"][:3] == ["serve", "--config", "/etc/understudy/understudy.yaml"], "default command")
check(set(cfg["Volumes"]) == {"/var/lib/understudy", "/tmp"}, "volumes")
hc = cfg["Healthcheck"]["Test"]
check(hc[0] == "CMD" and hc[1] == "/usr/bin/understudy" and "status" in hc, "HEALTHCHECK uses the CLI")
labels = cfg["Labels"]
for k in ("version", "source", "licenses", "revision", "created"):
    check("org.opencontainers.image." + k in labels, "label " + k)
check(labels["org.opencontainers.image.version"] == version, "version label")
check(len(manifest["layers"]) == 1 and len(config["rootfs"]["diff_ids"]) == 1, "one layer")
layer_path, _ = blob(manifest["layers"][0]["digest"])
docker = json.load(open(os.path.join(oci, "manifest.json")))
check(docker[0]["RepoTags"] == [chart_image], "docker manifest.json")
name = "understudy-" + version
sbom = json.load(open(os.path.join(out, name + ".spdx.json")))
pkgs = [l.split()[0] for l in open(os.path.join(out, name + ".packages.txt")) if not l.startswith("#")]
check(sbom["spdxVersion"] == "SPDX-2.3", "SPDX SBOM")
names = {(p["name"], p["versionInfo"]) for p in sbom["packages"]}
check(all(tuple(p.split("=", 1)) in names for p in pkgs), "SBOM lists every package")
check(("understudy", version) in names, "SBOM lists understudy")
json.dump(config, open(config_out, "w"))
os.symlink(layer_path, layer_out)
print("index, manifest, config, layer digests verified; name %s; user %s; %d Debian packages in the SBOM"
      % (ref, cfg["User"], len(pkgs)))
PY
# The Dockerfile builds the same image: same version, user, entrypoint,
# command, volumes and HEALTHCHECK as the archive's config.
"$PY" - "$ROOT/Dockerfile" "$TMP/image-config.json" "$APP_VERSION" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
cfg = json.load(open(sys.argv[2]))["config"]
runtime = text[text.rindex("\nFROM "):]  # the last stage is the image
def one(pattern):
    m = re.search(pattern, runtime, re.M)
    if not m:
        print("FAIL: Dockerfile: no match for", pattern); sys.exit(1)
    return m.group(1).strip()
problems = []
def same(what, dockerfile, image):
    if dockerfile != image:
        problems.append("%s: Dockerfile %r, build-image.sh %r" % (what, dockerfile, image))
same("ARG VERSION (= Chart.yaml appVersion)", one(r"^ARG VERSION=(\S+)"), sys.argv[3])
same("USER", one(r"^USER (\S+)"), cfg["User"])
same("ENTRYPOINT", json.loads(one(r"^ENTRYPOINT (\[.*\])")), cfg["Entrypoint"])
same("CMD", json.loads(one(r"^CMD (\[.*\])")), cfg["Cmd"])
same("WORKDIR", one(r"^WORKDIR (\S+)"), cfg["WorkingDir"])
same("VOLUME", sorted(json.loads(one(r"^VOLUME (\[.*\])"))), sorted(cfg["Volumes"]))
same("HEALTHCHECK", json.loads(one(r"^HEALTHCHECK .*?CMD (\[.*\])")), cfg["Healthcheck"]["Test"][1:])
if problems:
    print("FAIL: the Dockerfile and scripts/build-image.sh disagree:\n  " + "\n  ".join(problems)); sys.exit(1)
print("Dockerfile: same version, user, entrypoint, command, workdir, volumes and HEALTHCHECK")
PY
tar --numeric-owner -xzf "$TMP/layer" -C "$TMP/rootfs"
cmp "$TMP/rootfs/usr/share/understudy/packages.txt" <(grep -v '^#' "$OUT_DIR/understudy-$APP_VERSION.packages.txt" | awk '{ print $1 }') >/dev/null ||
  { echo "FAIL: the image's packages.txt differs from the one next to the archive"; exit 1; }

echo "=== the chart's default config"
"$PY" "$HERE/render_chart.py" "$CHART" configmap-understudy.yaml --data understudy.yaml >"$TMP/config/understudy.yaml"
chmod 0755 "$TMP/config" && chmod 0644 "$TMP/config/understudy.yaml"
sed 's/^/  /' "$TMP/config/understudy.yaml"
# The admin token the chart mounts from its Secret (admin.token_file), and
# the mount point its volume gets in the container.
mkdir -p "$TMP/secret-admin" "$TMP/rootfs/etc/understudy-secrets/admin"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TMP/secret-admin/token"
chmod 0755 "$TMP/secret-admin" && chmod 0644 "$TMP/secret-admin/token"

echo "=== in the image (chroot: read-only root, user 65532, private namespaces)"
unshare --mount --pid --net --ipc --uts --fork --kill-child -- \
  "$0" --inside "$TMP/rootfs" "$TMP/config" "$TMP/image-config.json" "$TMP/logs" "$TMP/secret-admin"

echo "=== reproducibility"
# shellcheck disable=SC1090
. "$DIGESTS"
if [ -z "$PREV" ]; then
  echo "no previous build in $OUT_DIR to compare with"
elif [ "$(grep '^INPUTS=' <<<"$PREV")" != "$(grep '^INPUTS=' "$DIGESTS")" ]; then
  echo "inputs changed since the previous build (binary, packages, SOURCE_DATE_EPOCH or the script): not compared"
elif [ "$(grep -E '^(MANIFEST|CONFIG|LAYER)_DIGEST=' <<<"$PREV")" != "$(grep -E '^(MANIFEST|CONFIG|LAYER)_DIGEST=' "$DIGESTS")" ]; then
  echo "FAIL: same inputs, different digests:"; echo "$PREV"; cat "$DIGESTS"; exit 1
else
  echo "same inputs as the previous build, same digests: manifest $MANIFEST_DIGEST, layer $LAYER_DIGEST"
fi

if command -v podman >/dev/null 2>&1; then
  # Private vfs storage under $TMP: the machine's own images stay untouched.
  echo "=== podman (private storage)"
  P=(podman --root "$TMP/podman/root" --runroot "$TMP/podman/run" --storage-driver vfs)
  if "${P[@]}" load -q -i "$ARCHIVE" >"$TMP/logs/podman-load" 2>&1; then
    "${P[@]}" image exists "$CHART_IMAGE" ||
      { echo "FAIL: podman load did not name it $CHART_IMAGE"; cat "$TMP/logs/podman-load"; exit 1; }
    echo "podman load: $(tail -n1 "$TMP/logs/podman-load"), $("${P[@]}" image inspect -f '{{.Size}}' "$CHART_IMAGE") bytes"
    if out=$(timeout 60 "${P[@]}" run --rm --network=none --read-only --user 65532:65532 \
               "$CHART_IMAGE" version 2>&1); then
      echo "podman run: $out"
      [ "$out" = "understudy $APP_VERSION" ] || { echo "FAIL: podman run printed '$out'"; exit 1; }
    else
      echo "podman run does not work on this machine (not an image problem): $(echo "$out" | tail -n1)"
    fi
  else
    echo "FAIL: podman load: $(cat "$TMP/logs/podman-load")"; exit 1
  fi
fi

echo "=== summary"
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }
UNPACKED=$(du -sb --apparent-size "$TMP/rootfs" | cut -f1)
echo "image $CHART_IMAGE: $(mb "$UNPACKED") unpacked, $(mb "$LAYER_BYTES") compressed layer, archive $(mb "$(stat -c %s "$ARCHIVE")")"
echo "build ${BUILD_SECONDS}s, whole test $(($(date +%s) - T0))s"
if [ "$UNPACKED" -gt 150000000 ]; then echo "FAIL: the image is over 150 MB"; exit 1; fi
echo "image_test: ok"
