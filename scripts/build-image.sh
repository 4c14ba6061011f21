#!/usr/bin/env bash
# Builds the understudy container image from Debian packages alone: no
# container registry, no Docker daemon. It is the same image as the
# Dockerfile's (Debian 12, the runtime libraries of the binary, user 65532,
# `understudy` as entrypoint), written as an OCI archive that `podman load`,
# `docker load`, `kind load image-archive` and `ctr images import` accept.
#
#   scripts/build-image.sh                      # → build/image/
#   scripts/build-image.sh --runtime-packages BINARY   # print pkg=version lines
#   scripts/build-image.sh --default-config     # print the image's default config
#   scripts/build-image.sh --check-mirror       # exit 0 iff the Debian mirror answers
#
# Steps: (1) the binary (build/cli/understudy; ./scripts/build.sh builds it
# when missing), debug info stripped; (2) its runtime packages, computed with
# ldd + dpkg -S; (3) mmdebstrap: Debian 12's Essential set + those packages
# + ca-certificates, merged /usr, no docs but copyright files; (4) the binary,
# user/group 65532, /var/lib/understudy, the default config and the package
# lists under /usr/share/understudy; (5) one layer tar made reproducibly
# (sorted, every mtime SOURCE_DATE_EPOCH, numeric owners, no atime or
# ctime), gzip -n; (6) the OCI config, manifest and index (plus a Docker
# manifest.json), tarred the same way; (7) an SPDX 2.3 SBOM and a package
# list next to the archive.
#
# Same binary, same SOURCE_DATE_EPOCH and same mirror content → same layer,
# config and manifest digests. Every package version is recorded in the image
# (/usr/share/understudy/packages.txt, and dpkg's status) and next to the
# archive (<name>.packages.txt, <name>.spdx.json). To rebuild exactly, pin
# them all and take them from a snapshot of the archive:
#   PACKAGES_LOCK=build/image/understudy-0.1.0.packages.txt \
#   DEBIAN_SNAPSHOT=20250520T000000Z scripts/build-image.sh
#
# Environment (all optional):
#   BUILD_DIR        build tree (default build); the binary is $BUILD_DIR/cli/understudy
#   UNDERSTUDY_BINARY  the binary to package (default $BUILD_DIR/cli/understudy)
#   OUT_DIR          where the archive, SBOM and lists go (default $BUILD_DIR/image)
#   IMAGE_REPO       image repository (default: understudy.image.repository in the chart's values.yaml)
#   IMAGE_TAG        image tag (default: the version `understudy version` prints)
#   SOURCE_DATE_EPOCH  timestamp of the image (default: the last commit's time)
#   DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR  (default: this host's apt sources, else deb.debian.org)
#   DEBIAN_SNAPSHOT  snapshot.debian.org timestamp, overrides both mirrors
#   PIN_VERSIONS     mirror (default): the mirror's current versions, security
#                    updates included (the build notes where they differ from
#                    the versions the binary was linked against: same Debian
#                    release, same ABI); host: the runtime libraries at exactly
#                    the versions installed here (fails if the mirror lacks one)
#   PACKAGES_LOCK    a packages.txt from an earlier build: every package at its
#                    recorded version (mmdebstrap --variant=custom)
#   IMAGE_LICENSE    SPDX expression for the licence label (default NOASSERTION)
#   KEEP_ROOTFS      1: keep the unpacked root filesystem in $OUT_DIR/rootfs
#
# Needs root (mmdebstrap --mode=root) and mmdebstrap, eatmydata, python3,
# binutils; it installs the missing ones with apt-get.
set -euo pipefail
export LC_ALL=C.UTF-8 TZ=UTC
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SUITE=bookworm
ARCH=$(dpkg --print-architecture)

log() { printf '%s\n' "build-image:${START:+ [+$(($(date +%s) - START))s]} $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- mirrors ----------------------------------------------------------------

# host_uris prints every URI in this host's apt sources (one-line and deb822).
host_uris() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" { print $2 }'
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    sed -e 's/#.*//' "$f" | awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }'
  done
}

set_mirrors() {
  if [ -n "${DEBIAN_SNAPSHOT:-}" ]; then
    MIRROR="http://snapshot.debian.org/archive/debian/$DEBIAN_SNAPSHOT"
    SECURITY_MIRROR="http://snapshot.debian.org/archive/debian-security/$DEBIAN_SNAPSHOT"
    return
  fi
  local uris
  uris=$(host_uris 2>/dev/null | sed 's#/*$##' || true)
  MIRROR=${DEBIAN_MIRROR:-$(printf '%s\n' "$uris" | grep -E '/debian$' | head -n1 || true)}
  SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-$(printf '%s\n' "$uris" | grep -E '/debian-security$' | head -n1 || true)}
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
  SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
}

# check_mirror fetches the suite's InRelease through apt's own downloader (so
# apt's proxy settings apply, as they do for mmdebstrap).
check_mirror() {
  set_mirrors
  local tmp url
  tmp=$(mktemp -d)
  for url in "$MIRROR/dists/$SUITE/InRelease" "$SECURITY_MIRROR/dists/$SUITE-security/InRelease"; do
    if ! timeout 60 /usr/lib/apt/apt-helper download-file "$url" "$tmp/InRelease" >"$tmp/log" 2>&1; then
      log "Debian mirror unreachable: $url: $(tail -n1 "$tmp/log")"
      rm -rf "$tmp"
      return 1
    fi
    rm -f "$tmp/InRelease"
  done
  rm -rf "$tmp"
  log "Debian mirrors reachable: $MIRROR, $SECURITY_MIRROR"
}

# --- runtime packages -------------------------------------------------------

# runtime_packages prints "package=version" for every package that ships a
# shared library the binary loads (ldd: direct and indirect), sorted. One
# dpkg-query call for all the paths: each call reads the whole database.
runtime_packages() {
  local binary=$1 lib real c pkg pkgs=() missing=()
  [ -x "$binary" ] || die "no executable at $binary"
  if ldd "$binary" | grep -q 'not found'; then
    ldd "$binary" | grep 'not found' >&2
    die "$binary needs libraries that are not installed"
  fi
  local -a libs cands
  mapfile -t libs < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
  # Every spelling dpkg may know a library by: as loaded, its /usr twin
  # (merged /usr) and its symlink target.
  for lib in "${libs[@]}"; do
    real=$(readlink -f "$lib")
    cands+=("$lib" "${lib/#\/lib\//\/usr\/lib\/}" "${lib/#\/usr\/lib\//\/lib\/}"
            "$real" "${real/#\/lib\//\/usr\/lib\/}" "${real/#\/usr\/lib\//\/lib\/}")
  done
  local -A owner=()
  local line
  while IFS= read -r line; do
    case "$line" in diversion*) continue ;; esac
    pkg=${line%%: /*}; pkg=${pkg%%,*}; pkg=${pkg%%:*}
    owner[${line#*: }]=$pkg
  done < <(dpkg-query -S "${cands[@]}" 2>/dev/null || true)
  for lib in "${libs[@]}"; do
    real=$(readlink -f "$lib")
    pkg=""
    for c in "$lib" "${lib/#\/lib\//\/usr\/lib\/}" "${lib/#\/usr\/lib\//\/lib\/}" \
             "$real" "${real/#\/lib\//\/usr\/lib\/}" "${real/#\/usr\/lib\//\/lib\/}"; do
      pkg=${owner[$c]:-}
      [ -n "$pkg" ] && break
    done
    if [ -n "$pkg" ]; then pkgs+=("$pkg"); else missing+=("$lib"); fi
  done
  [ ${#missing[@]} -eq 0 ] ||
    die "no Debian package ships ${missing[*]}: the image cannot be built from Debian alone"
  mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
  dpkg-query -W -f='${Package}=${Version}\n' "${pkgs[@]}" | sort
}

# --- the default config -----------------------------------------------------

default_config() {
  cat <<'EOF'
# The image's default config (/etc/understudy/understudy.yaml), used when no
# other is mounted over /etc/understudy (the Helm chart mounts its own).
# Everything not set here has the defaults `understudy check-config` accepts;
# examples/quickstart/understudy.yaml shows every section.
extproc:
  # All interfaces: Envoy may run in another container.
  listen: 0.0.0.0:50051
admin:
  # /healthz, /metrics, /v1/...; the HEALTHCHECK calls it on 127.0.0.1.
  listen: 0.0.0.0:9901
  # No token by default; mount a config with admin.token_file (the Helm
  # chart does) to require one on every call but /healthz.
storage:
  # The data volume.
  path: /var/lib/understudy/db
EOF
}

case "${1:-}" in
  --runtime-packages) runtime_packages "${2:?usage: $0 --runtime-packages BINARY}"; exit 0 ;;
  --default-config) default_config; exit 0 ;;
  --check-mirror) check_mirror; exit $? ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) die "unknown argument $1 (see --help)" ;;
esac

# --- the build --------------------------------------------------------------

[ "$(id -u)" -eq 0 ] || die "run as root (mmdebstrap --mode=root builds the root filesystem)"
START=$(date +%s)
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }

need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v eatmydata >/dev/null || need+=(eatmydata)   # no fsync while dpkg installs
[ -x /usr/bin/python3 ] || need+=(python3)
command -v objcopy >/dev/null || need+=(binutils)
command -v gzip >/dev/null || need+=(gzip)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

BUILD_DIR=${BUILD_DIR:-$ROOT/build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
BINARY=${UNDERSTUDY_BINARY:-$BUILD_DIR/cli/understudy}
OUT_DIR=${OUT_DIR:-$BUILD_DIR/image}
if [ ! -x "$BINARY" ]; then
  log "no binary at $BINARY: building it with scripts/build.sh"
  (cd "$ROOT" && BUILD_DIR="$BUILD_DIR" NINJA_TARGETS=understudy ./scripts/build.sh)
fi

VERSION=$("$BINARY" version | awk '{ print $2 }')
[ -n "$VERSION" ] || die "$BINARY version printed no version"
APP_VERSION=$(sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1/p' "$ROOT/charts/understudy/Chart.yaml")
if [ "$APP_VERSION" != "$VERSION" ]; then
  log "warning: the binary is $VERSION but charts/understudy/Chart.yaml appVersion is $APP_VERSION"
fi
CHART_REPO=$(awk '/^understudy:/ { u = 1 } u && /^    repository:/ { print $2; exit }' "$ROOT/charts/understudy/values.yaml")
IMAGE_REPO=${IMAGE_REPO:-${CHART_REPO:-ghcr.io/understudy/understudy}}
IMAGE_TAG=${IMAGE_TAG:-$VERSION}
IMAGE_REF="$IMAGE_REPO:$IMAGE_TAG"
REVISION=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
SOURCE_URL=$(sed -n 's/^home:[[:space:]]*//p' "$ROOT/charts/understudy/Chart.yaml")
LICENSE=${IMAGE_LICENSE:-NOASSERTION}
set_mirrors

mkdir -p "$OUT_DIR"
# One build at a time per output directory.
exec 9>"$OUT_DIR/.lock"
flock -w 900 9 || die "another build holds $OUT_DIR/.lock"
remove_work() { # $1: a work directory; unmount anything left mounted under it first
  local m
  for m in $(awk -v r="$1/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$1"
}
for stale in "$OUT_DIR"/.work.*; do  # left by an interrupted build
  [ -d "$stale" ] && remove_work "$stale"
done
WORK=$(mktemp -d "$OUT_DIR/.work.XXXXXX")
trap 'remove_work "$WORK"' EXIT

log "image $IMAGE_REF from $BINARY (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"

# (1) The binary without debug info (symbols kept for stack traces).
objcopy --strip-debug "$BINARY" "$WORK/understudy"
chmod 0755 "$WORK/understudy"

# (2) Its runtime packages.
runtime_packages "$BINARY" >"$WORK/runtime-packages.txt"
log "runtime packages from ldd + dpkg -S: $(wc -l <"$WORK/runtime-packages.txt")"

# (3) The root filesystem.
VARIANT=essential
# No docs, man pages or translations (copyright files stay). The excludes go
# into dpkg's config from the extract hook on, not through mmdebstrap's
# --dpkgopt, which filters every extracted package through a perl process
# (slow); step (4) removes what the Essential set's extraction left.
SLIM_DIRS="/usr/share/doc /usr/share/man /usr/share/info /usr/share/locale /usr/share/lintian /usr/share/bash-completion"
{
  echo '#!/bin/sh'
  echo 'mkdir -p "$1/etc/dpkg/dpkg.cfg.d"'
  echo 'cat >"$1/etc/dpkg/dpkg.cfg.d/90understudy-slim" <<EOF'
  echo '# scripts/build-image.sh: a container image needs no docs (copyright files stay).'
  for d in $SLIM_DIRS; do echo "path-exclude=$d/*"; done
  echo 'path-include=/usr/share/doc/*/copyright'
  echo 'EOF'
} >"$WORK/slim-hook.sh"
chmod 0755 "$WORK/slim-hook.sh"

mmdebstrap_run() { # $1: comma-separated --include list
  local rootfs=$WORK/rootfs
  rm -rf "$rootfs"
  nice -n 10 mmdebstrap --mode=root --variant="$VARIANT" --arch="$ARCH" \
    --hook-dir=/usr/share/mmdebstrap/hooks/eatmydata \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --include="$1" \
    --extract-hook="$WORK/slim-hook.sh" \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --aptopt='Acquire::Retries "3"' \
    "$SUITE" "$rootfs" \
    "deb $MIRROR $SUITE main" \
    "deb $MIRROR $SUITE-updates main" \
    "deb $SECURITY_MIRROR $SUITE-security main" >"$WORK/mmdebstrap.log" 2>&1
}
runtime_list=$(sed 's/=.*//' "$WORK/runtime-packages.txt" | paste -sd,)
case "${PACKAGES_LOCK:+lock}${PACKAGES_LOCK:-${PIN_VERSIONS:-mirror}}" in
  lock*)
    # Every package at the recorded version (a previous build's packages.txt).
    [ -f "$PACKAGES_LOCK" ] || die "no lock file $PACKAGES_LOCK"
    VARIANT=custom
    INCLUDE=$(grep -v '^#' "$PACKAGES_LOCK" | awk '{ print $1 }' | grep = | paste -sd,)
    log "installing the $(echo "$INCLUDE" | tr , '\n' | wc -l) package versions in $PACKAGES_LOCK" ;;
  host)
    # The runtime libraries at the versions the binary was linked against.
    INCLUDE="$(paste -sd, "$WORK/runtime-packages.txt"),ca-certificates" ;;
  mirror)
    # The mirror's current versions (with its security updates); recorded below.
    INCLUDE="$runtime_list,ca-certificates" ;;
  *) die "PIN_VERSIONS must be mirror or host" ;;
esac
log "mmdebstrap $SUITE from $MIRROR (+ $SUITE-updates, $SECURITY_MIRROR)"
mmdebstrap_run "$INCLUDE" || {
  grep -E '^E:' "$WORK/mmdebstrap.log" | head -n10 >&2 || tail -n30 "$WORK/mmdebstrap.log" >&2
  die "mmdebstrap failed (log: $WORK/mmdebstrap.log)"
}
R=$WORK/rootfs
log "root filesystem ready"

# (4) What the image adds to Debian.
install -D -m 0755 "$WORK/understudy" "$R/usr/bin/understudy"
echo 'understudy:x:65532:65532:understudy:/var/lib/understudy:/usr/sbin/nologin' >>"$R/etc/passwd"
echo 'understudy:x:65532:' >>"$R/etc/group"
echo 'understudy:*::0:99999:7:::' >>"$R/etc/shadow"
echo 'understudy:!::' >>"$R/etc/gshadow"
install -d -m 0750 -o 65532 -g 65532 "$R/var/lib/understudy"
install -d -m 0755 "$R/etc/understudy" "$R/usr/share/understudy"
default_config >"$R/etc/understudy/understudy.yaml"
chmod 0644 "$R/etc/understudy/understudy.yaml"
# Host- and mirror-specific files mmdebstrap leaves: not part of the image.
rm -f "$R/etc/resolv.conf" "$R/etc/hostname" "$R/etc/machine-id"
rm -rf "$R/etc/apt" "$R/var/lib/apt" "$R/var/cache/apt" "$R/var/log/apt"
rm -f "$R"/var/cache/debconf/*-old "$R"/var/lib/dpkg/*-old "$R/var/cache/ldconfig/aux-cache" "$R"/var/log/*.log
find "$R/dev" -mindepth 1 -delete
for d in $SLIM_DIRS; do
  [ -d "$R$d" ] || continue
  if [ "$d" = /usr/share/doc ]; then
    find "$R$d" -mindepth 1 ! -type d ! -name copyright -delete
    find "$R$d" -mindepth 1 -type d -empty -delete
  else
    find "$R$d" -mindepth 1 -delete
  fi
done
# The package lists, recorded in the image.
dpkg-query --admindir="$R/var/lib/dpkg" -W \
  -f='${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t${Source}\n' |
  awk -F'\t' '$1 ~ /^ii/ { print $2 "=" $3 }' | sort >"$WORK/packages.txt"
cp "$WORK/packages.txt" "$R/usr/share/understudy/packages.txt"
cp "$WORK/runtime-packages.txt" "$R/usr/share/understudy/runtime-packages.txt"
# Did apt install what the binary was linked against?
drift=$(sort "$WORK/runtime-packages.txt" | comm -23 - "$WORK/packages.txt" | sed 's/=.*//' || true)
for pkg in $drift; do
  log "note: $pkg: linked against $(grep "^$pkg=" "$WORK/runtime-packages.txt" | cut -d= -f2-)," \
      "the image has $(grep "^$pkg=" "$WORK/packages.txt" | cut -d= -f2-) (same Debian release)"
done
printf 'version=%s\nrevision=%s\nsource_date_epoch=%s\nsuite=%s\narch=%s\n' \
  "$VERSION" "$REVISION" "$SOURCE_DATE_EPOCH" "$SUITE" "$ARCH" >"$R/usr/share/understudy/build-info"
chmod 0644 "$R"/usr/share/understudy/*

# (5) The layer: reproducible tar (every mtime SOURCE_DATE_EPOCH, however
# the file got there), then gzip -n.
tar --create --file="$WORK/layer.tar" --directory="$R" \
  --sort=name --mtime="@$SOURCE_DATE_EPOCH" --numeric-owner \
  --format=posix --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
  --one-file-system .
ROOTFS_BYTES=$(stat -c %s "$WORK/layer.tar")
if [ "${KEEP_ROOTFS:-0}" = 1 ]; then
  rm -rf "$OUT_DIR/rootfs" && mv "$R" "$OUT_DIR/rootfs"
else
  rm -rf "$R"
fi
log "layer: $(mb "$ROOTFS_BYTES"), compressing"
nice -n 10 gzip -n -6 -c "$WORK/layer.tar" >"$WORK/layer.tar.gz"
log "OCI layout, archive, SBOM"

# (6) + (7) The OCI layout, the archive, the SBOM.
NAME=understudy-$IMAGE_TAG
export WORK OUT_DIR NAME IMAGE_REF IMAGE_REPO IMAGE_TAG VERSION REVISION SOURCE_URL LICENSE \
  SUITE ARCH MIRROR SECURITY_MIRROR ROOTFS_BYTES
/usr/bin/python3 - <<'PY'
import datetime, gzip, hashlib, json, os, shutil

env = os.environ
work, out, name = env["WORK"], env["OUT_DIR"], env["NAME"]
sde = int(env["SOURCE_DATE_EPOCH"])
created = datetime.datetime.fromtimestamp(sde, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
layout = os.path.join(work, "oci")
blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs)

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

def put_blob(data: bytes):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return digest, len(data)

def dumps(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

diff_id = sha256_file(os.path.join(work, "layer.tar"))
layer_digest = sha256_file(os.path.join(work, "layer.tar.gz"))
layer_size = os.path.getsize(os.path.join(work, "layer.tar.gz"))
shutil.move(os.path.join(work, "layer.tar.gz"), os.path.join(blobs, layer_digest))

labels = {
    "org.opencontainers.image.title": "understudy",
    "org.opencontainers.image.description":
        "Envoy ext_proc sidecar: shadow a candidate LLM, compare it with production, roll it out",
    "org.opencontainers.image.version": env["VERSION"],
    "org.opencontainers.image.revision": env["REVISION"],
    "org.opencontainers.image.source": env["SOURCE_URL"],
    "org.opencontainers.image.url": env["SOURCE_URL"],
    "org.opencontainers.image.licenses": env["LICENSE"],
    "org.opencontainers.image.created": created,
    "org.opencontainers.image.base.name": "debian:" + env["SUITE"],
    "org.opencontainers.image.ref.name": env["IMAGE_TAG"],
}
second = 1_000_000_000
config = {
    "created": created,
    "architecture": env["ARCH"],
    "os": "linux",
    "config": {
        "User": "65532:65532",
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Entrypoint": ["/usr/bin/understudy"],
        "Cmd": ["serve", "--config", "/etc/understudy/understudy.yaml"],
        "WorkingDir": "/var/lib/understudy",
        "ExposedPorts": {"50051/tcp": {}, "9901/tcp": {}},
        "Volumes": {"/var/lib/understudy": {}, "/tmp": {}},
        "StopSignal": "SIGTERM",
        "Labels": labels,
        # Docker's extension of the image config (podman and docker read it;
        # Kubernetes uses the chart's probes instead).
        "Healthcheck": {
            "Test": ["CMD", "/usr/bin/understudy", "status", "--admin", "http://127.0.0.1:9901",
                     "-o", "json"],
            "Interval": 30 * second, "Timeout": 5 * second,
            "StartPeriod": 10 * second, "Retries": 3,
        },
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]},
    "history": [{
        "created": created,
        "created_by": "scripts/build-image.sh: mmdebstrap --variant=essential %s + runtime libraries + understudy %s"
                      % (env["SUITE"], env["VERSION"]),
    }],
}
config_digest, config_size = put_blob(dumps(config))
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": "sha256:" + config_digest, "size": config_size},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + layer_digest, "size": layer_size}],
    "annotations": {"org.opencontainers.image.created": created},
}
manifest_digest, manifest_size = put_blob(dumps(manifest))
index = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + manifest_digest, "size": manifest_size,
        "platform": {"architecture": env["ARCH"], "os": "linux"},
        "annotations": {
            # podman/skopeo take the name from ref.name, containerd (ctr,
            # kind) from io.containerd.image.name.
            "org.opencontainers.image.ref.name": env["IMAGE_REF"],
            "io.containerd.image.name": env["IMAGE_REF"],
        },
    }],
}
with open(os.path.join(layout, "index.json"), "wb") as f:
    f.write(dumps(index))
with open(os.path.join(layout, "oci-layout"), "wb") as f:
    f.write(dumps({"imageLayoutVersion": "1.0.0"}))
# docker load (before Docker 25) reads manifest.json, not index.json.
with open(os.path.join(layout, "manifest.json"), "wb") as f:
    f.write(json.dumps([{"Config": "blobs/sha256/" + config_digest,
                         "RepoTags": [env["IMAGE_REF"]],
                         "Layers": ["blobs/sha256/" + layer_digest]}]).encode())

# The SBOM: every Debian package in the image, plus understudy itself.
def read_lines(path):
    with open(path) as f:
        return [l.strip() for l in f if l.strip()]
pkgs = [l.split("=", 1) for l in read_lines(os.path.join(work, "packages.txt"))]
runtime = {l.split("=", 1)[0] for l in read_lines(os.path.join(work, "runtime-packages.txt"))}
distro = "debian-12"
packages = [{
    "SPDXID": "SPDXRef-Package-understudy",
    "name": "understudy",
    "versionInfo": env["VERSION"],
    "downloadLocation": env["SOURCE_URL"] or "NOASSERTION",
    "licenseConcluded": "NOASSERTION",
    "licenseDeclared": env["LICENSE"],
    "copyrightText": "NOASSERTION",
    "filesAnalyzed": False,
    "sourceInfo": "revision " + env["REVISION"],
    "comment": "/usr/bin/understudy",
}]
relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                  "relatedSpdxElement": "SPDXRef-Package-understudy"}]
for pkg, ver in pkgs:
    sid = "SPDXRef-Package-deb-" + "".join(c if c.isalnum() or c in ".-" else "-" for c in pkg)
    packages.append({
        "SPDXID": sid,
        "name": pkg,
        "versionInfo": ver,
        "supplier": "Organization: Debian",
        "downloadLocation": "NOASSERTION",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "filesAnalyzed": False,
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                          "referenceLocator": "pkg:deb/debian/%s@%s?arch=%s&distro=%s"
                          % (pkg, ver.replace(":", "%3A").replace("+", "%2B"), env["ARCH"], distro)}],
        "comment": "runtime library of understudy (ldd)" if pkg in runtime else "Debian 12 base",
    })
    relationships.append({"spdxElementId": "SPDXRef-Package-understudy",
                          "relationshipType": "DEPENDS_ON" if pkg in runtime else "OTHER",
                          "relatedSpdxElement": sid})
sbom = {
    "spdxVersion": "SPDX-2.3",
    "dataLicense": "CC0-1.0",
    "SPDXID": "SPDXRef-DOCUMENT",
    "name": env["IMAGE_REF"],
    "documentNamespace": "%s/spdx/%s/sha256-%s" % (env["SOURCE_URL"] or "https://understudy.invalid",
                                                    env["IMAGE_REPO"], manifest_digest),
    "creationInfo": {"created": created, "creators": ["Tool: scripts/build-image.sh"]},
    "comment": "Image %s, manifest sha256:%s, layer sha256:%s; Debian %s from %s and %s"
               % (env["IMAGE_REF"], manifest_digest, layer_digest, env["SUITE"],
                  env["MIRROR"], env["SECURITY_MIRROR"]),
    "packages": packages,
    "relationships": relationships,
}
with open(os.path.join(out, name + ".spdx.json"), "w") as f:
    json.dump(sbom, f, indent=1, sort_keys=True)
    f.write("\n")
with open(os.path.join(out, name + ".packages.txt"), "w") as f:
    f.write("# %s (manifest sha256:%s): Debian packages, package=version\n"
            "# * = runtime library of the binary (ldd + dpkg -S)\n" % (env["IMAGE_REF"], manifest_digest))
    for pkg, ver in pkgs:
        f.write("%s=%s%s\n" % (pkg, ver, "  *" if pkg in runtime else ""))
with open(os.path.join(work, "digests.env"), "w") as f:
    f.write("MANIFEST_DIGEST=sha256:%s\nCONFIG_DIGEST=sha256:%s\nLAYER_DIGEST=sha256:%s\n"
            "DIFF_ID=sha256:%s\nLAYER_BYTES=%d\n"
            % (manifest_digest, config_digest, layer_digest, diff_id, layer_size))
PY

ARCHIVE=$OUT_DIR/$NAME.oci.tar
tar --create --file="$ARCHIVE.tmp" --directory="$WORK/oci" \
  --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
  --mode='u=rwX,go=rX' --format=posix \
  --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
  oci-layout index.json manifest.json blobs
mv "$ARCHIVE.tmp" "$ARCHIVE"
# shellcheck disable=SC1091
. "$WORK/digests.env"
cp "$WORK/digests.env" "$OUT_DIR/$NAME.digests"
echo "ARCHIVE_SHA256=sha256:$(sha256sum "$ARCHIVE" | cut -d' ' -f1)" >>"$OUT_DIR/$NAME.digests"
echo "IMAGE_REF=$IMAGE_REF" >>"$OUT_DIR/$NAME.digests"
# What the digests depend on: equal INPUTS must give equal digests.
{
  sha256sum "$WORK/understudy" "$0" | cut -d' ' -f1
  cat "$WORK/packages.txt"
  echo "$SOURCE_DATE_EPOCH $IMAGE_REF $REVISION $LICENSE $SOURCE_URL $ARCH"
} | sha256sum | sed 's/ .*//; s/^/INPUTS=sha256:/' >>"$OUT_DIR/$NAME.digests"

log "done in $(($(date +%s) - START)) s"
cat >&2 <<EOF
  image      $IMAGE_REF
  archive    $ARCHIVE ($(mb "$(stat -c %s "$ARCHIVE")"))
  size       $(mb "$ROOTFS_BYTES") unpacked, $(mb "$LAYER_BYTES") compressed
  manifest   $MANIFEST_DIGEST
  layer      $LAYER_DIGEST (diff_id $DIFF_ID)
  sbom       $OUT_DIR/$NAME.spdx.json
  packages   $OUT_DIR/$NAME.packages.txt ($(wc -l <"$WORK/packages.txt") Debian packages)
load it:     podman load -i $ARCHIVE
             kind load image-archive $ARCHIVE
             ctr -n k8s.io images import $ARCHIVE
EOF
