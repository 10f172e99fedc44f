#!/usr/bin/env bash
# Build the local base images that aim example solutions build FROM.
#
#   images/build.sh python [--force]   -> aim-base/python:bookworm
#   images/build.sh go     [--force]   -> aim-base/go:1.26
#   images/build.sh jupyter [--force]  -> aim-base/jupyter:bookworm
#   images/build.sh node   [--force]   -> aim-base/node:bookworm
#   images/build.sh nginx  [--force]   -> aim-base/nginx:bookworm
#   images/build.sh flask  [--force]   -> aim-base/flask:bookworm
#   images/build.sh prometheus [--force] -> aim-base/prometheus:bookworm
#   images/build.sh registry [--force] -> localhost/aim/registry (CNCF Distribution)
#   images/build.sh buildkit [--force] -> localhost/aim/buildkit (BuildKit, rootless)
#   images/build.sh all    [--force]   -> python and go
#
# Nothing is pulled from a registry: root filesystems are made with
# debootstrap from the Debian mirror configured on this host, then
# `docker import`ed. An image that already exists is not rebuilt (that is the
# cache) unless --force is given. The root filesystem tarballs are kept under
# ${AIM_CACHE:-$HOME/.cache/aim}/rootfs, so after `docker system prune` a
# re-import takes seconds; --force also discards those tarballs.
#
# Environment:
#   AIM_CACHE            cache directory (default $HOME/.cache/aim)
#   AIM_DEBIAN_MIRROR    override the Debian mirror (default: from /etc/apt)
#   AIM_DEBIAN_SECURITY  override the security mirror (default: from /etc/apt)
#   AIM_GOROOT           Go installation copied into the Go image (default /usr/local/go)
#   AIM_CA_BUNDLE        CA certificates npm trusts while it builds the Node.js image
#                        (default $NODE_EXTRA_CA_CERTS, then /etc/ssl/certs/ca-certificates.crt)
set -euo pipefail

SUITE=bookworm
PY_IMAGE=aim-base/python:bookworm
GO_IMAGE=aim-base/go:1.26
JUPYTER_IMAGE=aim-base/jupyter:bookworm
# The in-cluster registry and builder (docs/kubernetes.md, "Builds in the
# cluster"), built from their Go modules at these versions.
REGISTRY_VERSION=v3.1.2
BUILDKIT_VERSION=v0.34.2
REGISTRY_IMAGE=localhost/aim/registry:${REGISTRY_VERSION#v}
BUILDKIT_IMAGE=localhost/aim/buildkit:${BUILDKIT_VERSION#v}
# Debian's runc is linked against libseccomp, so BuildKit's image is a
# minbase root rather than FROM scratch; rootlesskit and uidmap (newuidmap)
# let buildkitd run as an unprivileged user in a user namespace; curl
# fetches the build context from the API (docs/kubernetes.md).
BUILDKIT_PACKAGES="runc rootlesskit uidmap ca-certificates curl"
NODE_IMAGE=aim-base/node:bookworm
CACHE=${AIM_CACHE:-$HOME/.cache/aim}
GOROOT_SRC=${AIM_GOROOT:-/usr/local/go}
CA_BUNDLE=${AIM_CA_BUNDLE:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}
# Packages of the Python image beyond minbase. Nothing else.
PY_PACKAGES="python3 python3-fastapi python3-uvicorn python3-numpy python3-multipart"
# Debian package whose files include Swagger UI 3.x dist assets; only those
# files are extracted (R itself is not installed), so /docs needs no CDN.
SWAGGER_PKG=r-cran-swagger
SWAGGER_SRC=usr/lib/R/site-library/swagger/dist3
# Jupyter Notebook as Debian packages it, for test/e2e's "bringing an
# existing app" test: an app built the usual way, with no change for aim.
JUPYTER_PACKAGES="jupyter-notebook python3-notebook"
# Node.js as Debian packages it, with express from npm's registry (npm
# itself is installed for that and removed again): for test/e2e's Node.js
# app of "bringing an existing app".
NODE_PACKAGES="nodejs"
NODE_NPM_PACKAGES="express@4"
# nginx as Debian packages it, for the same tests: Debian's configuration
# with one change, the port (8080 instead of 80).
NGINX_IMAGE=aim-base/nginx:bookworm
NGINX_PACKAGES="nginx-light"
# Flask and Prometheus as Debian packages them, for test/e2e's volume
# tests: an app that keeps uploads, and a time-series database.
FLASK_IMAGE=aim-base/flask:bookworm
FLASK_PACKAGES="python3-flask"
PROMETHEUS_IMAGE=aim-base/prometheus:bookworm
PROMETHEUS_PACKAGES="prometheus"

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required ($2)"; }

need_root() { [ "$(id -u)" = 0 ] || die "debootstrap and chroot need root"; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# First URI of the host's apt configuration (one-line or deb822 format) whose
# path ends in the given suffix (/debian or /debian-security).
apt_uri() {
  local suffix=$1
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk -v sfx="$suffix" '
      /^[[:space:]]*#/ { next }
      /^deb[[:space:]]/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } ; next }
      /^URIs:/ { for (i = 2; i <= NF; i++) print $i }
    ' | sed 's:/*$::' | grep -E "${suffix}\$" | head -n1
}

mirror() {
  local m=${AIM_DEBIAN_MIRROR:-$(apt_uri /debian)}
  [ -n "$m" ] || die "no Debian mirror found in /etc/apt; set AIM_DEBIAN_MIRROR"
  echo "$m"
}

security_mirror() {
  echo "${AIM_DEBIAN_SECURITY:-$(apt_uri /debian-security)}"
}

WORK=""
cleanup() {
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    umount "$WORK/root/proc" 2>/dev/null || true
    umount "$WORK/root/dev" 2>/dev/null || true
    # --one-file-system: never descend into a bind mount left behind.
    rm -rf --one-file-system "$WORK"
  fi
}
trap cleanup EXIT

new_work() {
  cleanup
  mkdir -p "$CACHE/tmp"
  WORK=$(mktemp -d "$CACHE/tmp/rootfs.XXXXXX")
  mkdir "$WORK/root"
}

# Pack $WORK/root into a tarball (without /dev, /proc, /sys contents).
pack_rootfs() {
  local out=$1
  tar -C "$WORK/root" --numeric-owner \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
    -czf "$out.part" .
  mv "$out.part" "$out"
}

# Remove what an image never needs at runtime: apt caches and lists, docs,
# man pages, locales, logs.
slim_rootfs() {
  local r=$1
  rm -rf "$r"/var/cache/apt/* "$r"/var/lib/apt/lists/* "$r"/var/cache/debconf/*-old \
    "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* \
    "$r"/usr/share/locale/* "$r"/usr/share/lintian "$r"/var/log/* "$r"/tmp/* "$r"/root/.cache
  # Keep copyright files: licences of what we ship.
}

# Minimal Debian (variant minbase), cached as a tarball; sets MINBASE_TB.
# (Functions set globals rather than echo, so they never run in a subshell:
# the EXIT trap then always unmounts and removes the work directory.)
ensure_minbase() {
  local tb=$CACHE/rootfs/$SUITE-minbase.tar.gz
  MINBASE_TB=$tb
  if [ -f "$tb" ] && { [ "$FORCE" != 1 ] || [ "$MINBASE_FRESH" = 1 ]; }; then
    return
  fi
  need_root
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap (Debian's package)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } ||
      die "could not install debootstrap (apt-get install debootstrap)"
  fi
  local m; m=$(mirror)
  log "debootstrap --variant=minbase $SUITE from $m (a few minutes)"
  new_work
  debootstrap --variant=minbase "$SUITE" "$WORK/root" "$m" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
  local sec; sec=$(security_mirror)
  {
    echo "deb $m $SUITE main"
    echo "deb $m $SUITE-updates main"
    [ -n "$sec" ] && echo "deb $sec $SUITE-security main"
  } >"$WORK/root/etc/apt/sources.list"
  slim_rootfs "$WORK/root"
  mkdir -p "$CACHE/rootfs"
  pack_rootfs "$tb"
  cleanup
  MINBASE_FRESH=1
  log "cached $tb ($(du -h "$tb" | cut -f1))"
}

# A fresh root from the minbase tarball in $WORK/root; sets R. The caller
# fills it (chroot_install) and caches it (cache_root).
new_root() {
  need_root
  ensure_minbase
  new_work
  tar -C "$WORK/root" -xzf "$MINBASE_TB"
  R=$WORK/root
}

# Installs Debian packages into $R from the root's own apt sources, then
# runs the shell commands given (if any) in the chroot too.
chroot_install() {
  local packages=$1 more=${2:-}
  cp /etc/resolv.conf "$R/etc/resolv.conf"
  mount -t proc proc "$R/proc"
  mount --bind /dev "$R/dev"
  log "installing into chroot: $packages"
  chroot "$R" /usr/bin/env DEBIAN_FRONTEND=noninteractive HOME=/root sh -euc "
    apt-get update -qq
    apt-get upgrade -y -qq >/dev/null
    apt-get install -y -qq --no-install-recommends $packages >/dev/null
    $more
  " >"$WORK/chroot.log" 2>&1 || { tail -n 30 "$WORK/chroot.log" >&2; die "package install failed (log above)"; }
  umount "$R/proc" "$R/dev"
  rm -f "$R/etc/resolv.conf"
}

# Byte-code compiled now, since containers run with a read-only root.
compile_python() {
  if [ -x "$R/usr/bin/python3" ]; then
    chroot "$R" python3 -m compileall -q /usr/lib/python3/dist-packages >/dev/null 2>&1 || true
  fi
}

# Slims $R and caches it as the tarball given; directories named after it
# (relative to the root) are kept as they are, where slim_rootfs would
# empty them.
cache_root() {
  local tb=$1; shift
  local d i=0
  for d in "$@"; do mv "$R/$d" "$WORK/keep$i"; i=$((i + 1)); done
  slim_rootfs "$R"
  i=0
  for d in "$@"; do mv "$WORK/keep$i" "$R/$d"; i=$((i + 1)); done
  pack_rootfs "$tb"
  cleanup
  log "cached $tb ($(du -h "$tb" | cut -f1))"
}

# Sets TB to the cached root tarball of the given name, and reports
# whether it must be made (missing, or --force).
need_tarball() {
  TB=$CACHE/rootfs/$SUITE-$1.tar.gz
  [ ! -f "$TB" ] || [ "$FORCE" = 1 ]
}

# Whether the image should be left as it is (it exists and no --force).
keep_image() {
  if image_exists "$1" && [ "$FORCE" != 1 ]; then
    log "$1 exists, skipping (use --force to rebuild)"
    return 0
  fi
  return 1
}

# docker import of $TB as the image given, with the Dockerfile-style
# changes after the message.
import_image() {
  local image=$1 msg=$2; shift 2
  local args=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
  local c
  for c in "$@"; do args+=(--change "$c"); done
  log "docker import $image"
  docker import "${args[@]}" -m "$msg" "$TB" "$image" >/dev/null
  log "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
}

# Minbase + the given Debian packages (byte-code compiled if they bring
# Python), cached; sets TB. For the images that are an app as Debian
# ships it.
ensure_packages_tarball() {
  need_tarball "$1" || return 0
  new_root
  chroot_install "$2"
  compile_python
  cache_root "$TB"
}

# Minbase + Python packages + Swagger UI's assets; sets TB.
ensure_python_tarball() {
  need_tarball python || return 0
  new_root
  chroot_install "$PY_PACKAGES" "cd /tmp && apt-get download -qq $SWAGGER_PKG
    dpkg-deb -x /tmp/${SWAGGER_PKG}_*.deb /tmp/swg"
  mkdir -p "$R/usr/share/swagger-ui"
  cp "$R/tmp/swg/$SWAGGER_SRC"/swagger-ui-bundle.js "$R/tmp/swg/$SWAGGER_SRC"/swagger-ui.css \
    "$R/tmp/swg/$SWAGGER_SRC"/favicon-32x32.png "$R/usr/share/swagger-ui/"
  cp "$R/tmp/swg/usr/share/doc/$SWAGGER_PKG/copyright" "$R/usr/share/swagger-ui/copyright"
  echo "Swagger UI assets from the Debian package $SWAGGER_PKG ($SWAGGER_SRC)" >"$R/usr/share/swagger-ui/SOURCE"
  compile_python
  cache_root "$TB"
}

build_python() {
  keep_image "$PY_IMAGE" && return
  ensure_python_tarball
  import_image "$PY_IMAGE" "aim base: Debian $SUITE minbase + $PY_PACKAGES" \
    'ENV LANG=C.UTF-8' 'ENV PYTHONDONTWRITEBYTECODE=1' 'ENV PYTHONUNBUFFERED=1' \
    'ENV SWAGGER_UI_DIR=/usr/share/swagger-ui' 'CMD ["python3"]'
}

# The image is Jupyter as a user would package it: the notebook server on
# 8080, and nothing changed for aim (no HOME, no runtime directory).
build_jupyter() {
  keep_image "$JUPYTER_IMAGE" && return
  ensure_packages_tarball jupyter "$JUPYTER_PACKAGES"
  import_image "$JUPYTER_IMAGE" "aim base: Debian $SUITE minbase + $JUPYTER_PACKAGES" \
    'ENV LANG=C.UTF-8' 'CMD ["jupyter","notebook","--ip=0.0.0.0","--port=8080","--no-browser"]'
}

# Minbase + Debian's nodejs + express from npm; sets TB. npm runs in the
# chroot, so nothing of the host's Node.js is in the image; it trusts the
# host's CA bundle (a proxy that inspects TLS has its CA there, not in the
# chroot's ca-certificates), which stays out of the image.
ensure_node_tarball() {
  need_tarball node || return 0
  new_root
  cp "$CA_BUNDLE" "$R/tmp/host-ca.crt"
  chroot_install "$NODE_PACKAGES npm ca-certificates" "
    npm install --global --no-audit --no-fund --omit=dev --cafile /tmp/host-ca.crt $NODE_NPM_PACKAGES
    apt-get purge -y -qq npm >/dev/null
    apt-get autoremove -y -qq >/dev/null
    node -e 'require(\"/usr/local/lib/node_modules/express\")'"
  rm -rf "$R/root/.npm"
  cache_root "$TB"
}

# NODE_PATH lets an app require('express') from anywhere, as a global
# install does not by itself.
build_node() {
  keep_image "$NODE_IMAGE" && return
  ensure_node_tarball
  import_image "$NODE_IMAGE" "aim base: Debian $SUITE minbase + $NODE_PACKAGES + $NODE_NPM_PACKAGES (npm)" \
    'ENV LANG=C.UTF-8' 'ENV NODE_PATH=/usr/local/lib/node_modules' 'CMD ["node"]'
}

# Minbase + nginx-light; sets TB. The one change to Debian's
# configuration is the port; /var/log/nginx stays as the package made it
# (nginx opens its logs there), where slim_rootfs would empty /var/log.
ensure_nginx_tarball() {
  need_tarball nginx || return 0
  new_root
  chroot_install "$NGINX_PACKAGES"
  sed -i -e 's/listen 80 default_server;/listen 8080 default_server;/' \
    -e 's/listen \[::\]:80 default_server;/listen [::]:8080 default_server;/' \
    "$R/etc/nginx/sites-available/default"
  grep -q 'listen 8080 default_server;' "$R/etc/nginx/sites-available/default" ||
    die "Debian's nginx site no longer says listen 80 default_server; update the sed above"
  cache_root "$TB" var/log/nginx
}

# nginx as Debian runs it, in the foreground: nothing else changed for aim.
build_nginx() {
  keep_image "$NGINX_IMAGE" && return
  ensure_nginx_tarball
  import_image "$NGINX_IMAGE" "aim base: Debian $SUITE minbase + $NGINX_PACKAGES, listening on 8080" \
    'CMD ["nginx","-g","daemon off;"]'
}

# Flask as Debian packages it; the app is the test's (FROM this image).
build_flask() {
  keep_image "$FLASK_IMAGE" && return
  ensure_packages_tarball flask "$FLASK_PACKAGES"
  import_image "$FLASK_IMAGE" "aim base: Debian $SUITE minbase + $FLASK_PACKAGES" \
    'ENV LANG=C.UTF-8' 'ENV PYTHONDONTWRITEBYTECODE=1' 'ENV PYTHONUNBUFFERED=1' 'CMD ["python3"]'
}

# Prometheus as Debian packages it, with Debian's configuration and its
# TSDB where Debian keeps it; only the listen address is aim's 8080.
build_prometheus() {
  keep_image "$PROMETHEUS_IMAGE" && return
  ensure_packages_tarball prometheus "$PROMETHEUS_PACKAGES"
  import_image "$PROMETHEUS_IMAGE" "aim base: Debian $SUITE minbase + $PROMETHEUS_PACKAGES" \
    'CMD ["prometheus","--config.file=/etc/prometheus/prometheus.yml","--storage.tsdb.path=/var/lib/prometheus/metrics2","--web.listen-address=:8080"]'
}

build_go() {
  if image_exists "$GO_IMAGE" && [ "$FORCE" != 1 ]; then
    log "$GO_IMAGE exists, skipping (use --force to rebuild)"; return
  fi
  [ -x "$GOROOT_SRC/bin/go" ] || die "no Go at $GOROOT_SRC (set AIM_GOROOT)"
  local ver; ver=$("$GOROOT_SRC/bin/go" env GOVERSION)
  case "$ver" in go1.26*) ;; *) die "$GOROOT_SRC is $ver, $GO_IMAGE needs go1.26.x" ;; esac
  local tb=$CACHE/rootfs/$SUITE-$ver.tar.gz
  if [ ! -f "$tb" ] || [ "$FORCE" = 1 ]; then
    need_root
    ensure_minbase
    new_work
    tar -C "$WORK/root" -xzf "$MINBASE_TB"
    log "adding $GOROOT_SRC ($ver) to the minbase root filesystem"
    mkdir -p "$WORK/root/usr/local"
    cp -a "$GOROOT_SRC" "$WORK/root/usr/local/go"
    pack_rootfs "$tb"
    cleanup
    log "cached $tb ($(du -h "$tb" | cut -f1))"
  fi
  log "docker import $GO_IMAGE"
  # GOTOOLCHAIN=local and GOPROXY=off: builds must not touch the network;
  # example modules use only the standard library.
  docker import \
    --change 'ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV GOTOOLCHAIN=local' \
    --change 'ENV GOPROXY=off' \
    --change 'ENV CGO_ENABLED=0' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["go","version"]' \
    -m "aim base: Debian $SUITE minbase + $ver" \
    "$tb" "$GO_IMAGE" >/dev/null
  log "built $GO_IMAGE ($(docker image inspect -f '{{.Size}}' "$GO_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

# Static Go binaries of the given packages at a module version, cached in
# $CACHE/bin/<name>-<version>; sets GOBIN_DIR. `go install pkg@version`
# (as test/cluster/build.sh does for CoreDNS) pins each by the checksum
# database and keeps their dependency trees out of aim's go.mod.
go_tools() {
  local name=$1 version=$2; shift 2
  GOBIN_DIR=$CACHE/bin/$name-$version
  if [ -d "$GOBIN_DIR" ] && [ "$FORCE" != 1 ]; then return; fi
  local go=$GOROOT_SRC/bin/go
  [ -x "$go" ] || die "no Go at $GOROOT_SRC (set AIM_GOROOT)"
  rm -rf "$GOBIN_DIR.tmp"
  mkdir -p "$GOBIN_DIR.tmp"
  local p
  for p in "$@"; do
    log "go install $p@$version (static)"
    GOBIN=$GOBIN_DIR.tmp CGO_ENABLED=0 "$go" install -trimpath -ldflags "-s -w" "$p@$version" ||
      die "go install $p@$version failed"
  done
  rm -rf "$GOBIN_DIR"
  mv "$GOBIN_DIR.tmp" "$GOBIN_DIR"
}

# CNCF Distribution's registry FROM scratch, as uid 65534, storing blobs
# in /var/lib/registry (a volume; the chart mounts a PVC there).
build_registry() {
  if image_exists "$REGISTRY_IMAGE" && [ "$FORCE" != 1 ]; then
    log "$REGISTRY_IMAGE exists, skipping (use --force to rebuild)"; return
  fi
  go_tools registry "$REGISTRY_VERSION" github.com/distribution/distribution/v3/cmd/registry
  local ctx; ctx=$(mktemp -d)
  cp "$GOBIN_DIR/registry" "$(dirname "$0")/registry.yml" "$ctx/"
  mkdir -p "$ctx/data" "$ctx/tmp"
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY registry /registry
COPY registry.yml /etc/distribution/config.yml
COPY --chown=65534:65534 data /var/lib/registry
COPY --chown=65534:65534 tmp /tmp
USER 65534:65534
VOLUME /var/lib/registry
EXPOSE 5000
ENTRYPOINT ["/registry"]
CMD ["serve", "/etc/distribution/config.yml"]
DOCKERFILE
  log "docker build $REGISTRY_IMAGE"
  local out
  out=$(DOCKER_BUILDKIT=0 docker build -q -t "$REGISTRY_IMAGE" "$ctx" 2>&1) || { rm -rf "$ctx"; die "docker build $REGISTRY_IMAGE: $out"; }
  rm -rf "$ctx"
  log "built $REGISTRY_IMAGE ($(docker image inspect -f '{{.Size}}' "$REGISTRY_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

# Minbase + runc (+ rootlesskit, uidmap) + static buildkitd and buildctl,
# with a user "user" (uid 1000) whose subordinate ids rootless mode maps.
build_buildkit() {
  keep_image "$BUILDKIT_IMAGE" && return
  local tools; tools=$(cd "$(dirname "$0")/tools" && pwd)
  local go=$GOROOT_SRC/bin/go
  local pinned; pinned=$(cd "$tools" && "$go" list -m -f '{{.Version}}' github.com/moby/buildkit)
  [ "$pinned" = "$BUILDKIT_VERSION" ] || die "images/tools/go.mod pins BuildKit $pinned, build.sh says $BUILDKIT_VERSION"
  local bins=$CACHE/bin/buildkit-$BUILDKIT_VERSION
  if [ ! -d "$bins" ] || [ "$FORCE" = 1 ]; then
    log "go build buildkitd, buildctl $BUILDKIT_VERSION (static, from images/tools)"
    rm -rf "$bins.tmp"
    mkdir -p "$bins.tmp"
    (cd "$tools" && CGO_ENABLED=0 "$go" build -trimpath -o "$bins.tmp/" \
      -ldflags "-s -w -X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION" \
      github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl) ||
      die "go build of BuildKit failed"
    rm -rf "$bins"
    mv "$bins.tmp" "$bins"
  fi
  if need_tarball "buildkit-$BUILDKIT_VERSION"; then
    new_root
    chroot_install "$BUILDKIT_PACKAGES" "
      useradd --uid 1000 --create-home --shell /bin/sh user
      mkdir -p /home/user/.local/share/buildkit /run/user/1000
      chown -R user:user /home/user /run/user/1000
      chmod 700 /run/user/1000"
    # useradd gave user the ids 100000-165535: rootless mode maps them.
    grep -q '^user:' "$R/etc/subuid" || die "useradd made no subordinate ids for user"
    cp "$bins/buildkitd" "$bins/buildctl" "$R/usr/local/bin/"
    # BuildKit's own wrapper: starts buildkitd (under rootlesskit when not
    # root), waits for it, then runs buildctl with the arguments given.
    local src
    src=$(cd "$tools" && "$go" list -m -f '{{.Dir}}' github.com/moby/buildkit)
    install -m 0755 "$src/examples/buildctl-daemonless/buildctl-daemonless.sh" "$R/usr/local/bin/"
    cache_root "$TB"
  fi
  import_image "$BUILDKIT_IMAGE" "aim: BuildKit $BUILDKIT_VERSION on Debian $SUITE minbase + $BUILDKIT_PACKAGES" \
    'ENV LANG=C.UTF-8' 'ENV XDG_RUNTIME_DIR=/run/user/1000' 'ENTRYPOINT ["buildkitd"]'
}

FORCE=0
MINBASE_FRESH=0
target=""
for a in "$@"; do
  case "$a" in
    --force|-f) FORCE=1 ;;
    python|go|jupyter|node|nginx|flask|prometheus|registry|buildkit|all) [ -z "$target" ] || usage; target=$a ;;
    -h|--help) usage ;;
    *) usage ;;
  esac
done
[ -n "$target" ] || usage
need docker "Docker Engine"
docker info >/dev/null 2>&1 || die "cannot reach the Docker daemon"
need flock "util-linux"
# Test packages run in parallel and each may build a missing base image:
# one build at a time shares the cache (and its .part files) safely, and
# the second finds the image made by the first and skips it.
mkdir -p "$CACHE"
exec 9>"$CACHE/images.lock"
flock 9

case "$target" in
  python) build_python ;;
  go) build_go ;;
  jupyter) build_jupyter ;;
  node) build_node ;;
  nginx) build_nginx ;;
  flask) build_flask ;;
  prometheus) build_prometheus ;;
  registry) build_registry ;;
  buildkit) build_buildkit ;;
  all) build_go; build_python ;;
esac
log "done"
