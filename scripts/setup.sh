#!/usr/bin/env bash
# One-command set-up of everything genai_stack needs on this machine, idempotent and cached:
#   Debian packages (docker.io, debootstrap) when missing, a running docker engine, the compose v2
#   plugin, the Python venv (pinned), the Ansible collections, the local base images
#   local/debian:12 and :13, and the stand-in images built FROM them.
# A re-run with nothing changed only checks stamps and takes seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="$ROOT/.cache"
VENV="$ROOT/.venv"
mkdir -p "$CACHE"
cd "$ROOT"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
# Runs $2.. unless the stamp $1 already holds the hash $HASH.
stamped() {
  local stamp="$CACHE/$1.stamp"; shift
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$HASH" ]; then return 0; fi
  "$@"
  echo "$HASH" >"$stamp"
}

apt_updated=
apt_install() {
  [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- Debian packages -----------------------------------------------------------------------
need=()
command -v docker >/dev/null || need+=(docker.io)
command -v dockerd >/dev/null || docker info >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
[ -x /usr/bin/chromium ] || need+=(chromium)       # the panel's browser test (Playwright drives it)
command -v curl >/dev/null || need+=(curl)
# the production scenario: ssh to its hosts, a signed apt repository built by the test
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v gpg >/dev/null || need+=(gpg)
command -v dpkg-scanpackages >/dev/null || need+=(dpkg-dev)
command -v openssl >/dev/null || need+=(openssl)   # a test certificate (http checks over TLS)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)   # the floor bench/gateway_bench.py compares the gateway with
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  apt_install $(printf '%s\n' "${need[@]}" | sort -u)
fi

# --- docker engine -------------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  pidfile=/var/run/docker.pid
  if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log "removing stale $pidfile"
    rm -f "$pidfile"
  fi
  log "starting dockerd (log: $CACHE/dockerd.log)"
  # No default bridge: every container here uses host networking on 127.0.0.1, so docker never
  # creates or routes a private-range network.
  nohup dockerd --bridge=none --iptables=false --ip6tables=false >"$CACHE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 "$CACHE/dockerd.log"; echo "dockerd did not start" >&2; exit 1; }
fi

# --- compose v2 plugin ---------------------------------------------------------------------
# Kept under .cache/cli-plugins as well, so molecule instances can mount the same binary.
COMPOSE_DIR="$CACHE/compose"
if ! docker compose version 2>/dev/null | grep -qE 'v?2\.'; then
  log "installing the compose v2 plugin from Debian trixie's docker-compose package"
  mkdir -p "$COMPOSE_DIR/lists/partial" "$COMPOSE_DIR/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" >"$COMPOSE_DIR/sources.list"
  A=(-o "Dir::Etc::SourceList=$COMPOSE_DIR/sources.list" -o Dir::Etc::SourceParts=/nonexistent
     -o "Dir::State::Lists=$COMPOSE_DIR/lists" -o "Dir::Cache=$COMPOSE_DIR/cache")
  apt-get "${A[@]}" update -qq
  (cd "$COMPOSE_DIR" && rm -f docker-compose_*.deb && apt-get "${A[@]}" download docker-compose/trixie)
  rm -rf "$COMPOSE_DIR/x" && dpkg -x "$COMPOSE_DIR"/docker-compose_*.deb "$COMPOSE_DIR/x"
  install -D -m 0755 "$COMPOSE_DIR/x/usr/libexec/docker/cli-plugins/docker-compose" \
    /usr/local/lib/docker/cli-plugins/docker-compose
fi
mkdir -p "$CACHE/bin" "$CACHE/cli-plugins"
compose_bin=$(docker info --format '{{range .ClientInfo.Plugins}}{{if eq .Name "compose"}}{{.Path}}{{end}}{{end}}' 2>/dev/null || true)
[ -n "$compose_bin" ] || compose_bin=/usr/local/lib/docker/cli-plugins/docker-compose
cp -fL "$compose_bin" "$CACHE/cli-plugins/docker-compose"
cp -fL "$(command -v docker)" "$CACHE/bin/docker"

# --- Python venv ---------------------------------------------------------------------------
# requirements.txt: the runtime lock (pyproject's dependencies); requirements-dev.txt: the tools
# and tests on top of it (-r requirements.txt).
HASH=$(hash_of requirements.txt requirements-dev.txt pyproject.toml)
make_venv() {
  log "creating the venv from requirements.txt and requirements-dev.txt"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r requirements.txt -r requirements-dev.txt
  "$VENV/bin/pip" install -q --no-deps -e .   # the genai-stack CLI and panel
}
stamped venv make_venv

# --- Ansible collections -------------------------------------------------------------------
# Galaxy first (where it answers), else the same collections out of the `ansible` wheel on PyPI.
HASH=$(hash_of requirements.yml scripts/collections_from_wheel.py)
install_collections() {
  local dest="$ROOT/collections"
  if timeout 20 "$VENV/bin/ansible-galaxy" collection install -r requirements.yml -p "$dest" >/dev/null 2>&1; then
    log "collections installed from Galaxy"
  else
    log "Galaxy unreachable: taking the collections from the ansible wheel on PyPI"
    "$VENV/bin/python" scripts/collections_from_wheel.py requirements.yml "$dest"
  fi
}
stamped collections install_collections

# --- upstream sources ----------------------------------------------------------------------
# vLLM's sdist of each release the project accepts (PyPI, sha256-checked): the tests run that
# release's own argparse over what the role renders (scripts/vllm_grammar.py).
HASH=$(hash_of plugins/module_utils/grammar_vllm.py scripts/vllm_grammar.py)
fetch_upstream() {
  log "fetching the vLLM sdists of plugins/module_utils/grammar_vllm.py"
  "$VENV/bin/python" scripts/vllm_grammar.py --fetch
}
stamped upstream fetch_upstream

# --- base images ---------------------------------------------------------------------------
build_base() {  # $1 = tag (12|13), $2 = suite
  local tag=$1 suite=$2 recipe
  recipe=$(printf 'minbase python3,python3-apt,sudo,ca-certificates %s v1' "$suite" | sha256sum | cut -c1-16)
  if [ "$(docker image inspect -f '{{index .Config.Labels "genai.recipe"}}' "local/debian:$tag" 2>/dev/null)" = "$recipe" ]; then
    return 0
  fi
  log "building local/debian:$tag with debootstrap ($suite)"
  local rootfs
  rootfs=$(mktemp -d "$CACHE/rootfs-$tag.XXXX")
  debootstrap --variant=minbase --include=python3,python3-apt,sudo,ca-certificates \
    "$suite" "$rootfs" http://deb.debian.org/debian >"$CACHE/debootstrap-$tag.log" 2>&1
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' \
    --change "LABEL genai.recipe=$recipe" - "local/debian:$tag" >/dev/null
  rm -rf "$rootfs"
}
build_base 12 bookworm &
b12=$!
build_base 13 trixie
wait "$b12"

# --- stand-in images -----------------------------------------------------------------------
for dir in tests/standins/*/; do
  name=$(basename "$dir")
  [ -f "$dir/Dockerfile" ] || continue
  recipe=$( (find "$dir" -type f -not -name '*.pyc' -print0 | sort -z | xargs -0 cat; \
             docker image inspect -f '{{.Id}}' local/debian:12) | sha256sum | cut -c1-16)
  image="local/${name}-standin:latest"
  if [ "$(docker image inspect -f '{{index .Config.Labels "genai.recipe"}}' "$image" 2>/dev/null)" != "$recipe" ]; then
    log "building $image"
    docker build -q --network host --label "genai.recipe=$recipe" -t "$image" "$dir" >/dev/null
  fi
done

# --- SSH test hosts (the production scenario: a fresh Debian reached over SSH) ---------------
for tag in 12 13; do
  recipe=$( (cat tests/hosts/ssh/Dockerfile; docker image inspect -f '{{.Id}}' "local/debian:$tag") \
            | sha256sum | cut -c1-16)
  image="local/ssh-host:$tag"
  if [ "$(docker image inspect -f '{{index .Config.Labels "genai.recipe"}}' "$image" 2>/dev/null)" != "$recipe" ]; then
    log "building $image"
    docker build -q --network host --build-arg "DISTRO=$tag" --label "genai.recipe=$recipe" \
      -t "$image" tests/hosts/ssh >/dev/null
  fi
done

# --- demo vault password (the demo's secret is kept vault-encrypted with it, outside git) -----
install -d -m 0700 "$ROOT/.secrets" "$ROOT/.secrets/demo"
[ -s "$ROOT/.secrets/demo/vault-pass" ] || (umask 077; head -c 32 /dev/urandom | base64 >"$ROOT/.secrets/demo/vault-pass")

log "ready: $(docker version -f 'engine {{.Server.Version}}'), $(docker compose version --short 2>/dev/null | sed 's/^/compose /'), $("$VENV/bin/ansible" --version | head -1)"
