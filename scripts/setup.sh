#!/usr/bin/env bash
# One-time set-up of a fresh machine for rtest, shared by the README and CI:
# system packages (as root, on Debian/Ubuntu), a Docker engine that answers,
# rtest in .venv, and the SageMaker look-alike images (built offline when no
# registry is reachable). Safe to run again: every step skips what is done.
set -euo pipefail

cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
PYTHON="${PYTHON:-python3}"
# Debian root and wheelhouse for offline image builds; CI points this at a machine-wide cache.
export RTEST_CACHE_DIR="${RTEST_CACHE_DIR:-$HOME/.cache/rtest}"

declare -a TIMINGS=()
phase_name=""
phase_started=0
start_phase() { phase_name="$1"; phase_started=$(date +%s); echo "==> $phase_name"; }
end_phase() { TIMINGS+=("$(printf '%-20s %4d s' "$phase_name" $(( $(date +%s) - phase_started )))"); }
print_timings() {
  local rc=$?
  echo "==> set-up timings"
  if (( ${#TIMINGS[@]} )); then printf '    %s\n' "${TIMINGS[@]}"; fi
  if [[ $rc -ne 0 && -n "$phase_name" ]]; then echo "    (failed during: $phase_name)"; fi
  return $rc
}
trap print_timings EXIT
fail() { echo "setup: $*" >&2; exit 1; }
# shellcheck source=scripts/pidfile.sh
source scripts/pidfile.sh

install_system_packages() {
  # docker.io: the engine; debootstrap: offline base images; chromium: the HTML report's browser test.
  local wanted=(docker.io debootstrap chromium ca-certificates tar) missing=() pkg
  for pkg in "${wanted[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if (( ${#missing[@]} == 0 )); then echo "already installed: ${wanted[*]}"; return; fi
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "not installing ${missing[*]} (needs root on Debian/Ubuntu); install them yourself if the next steps fail"
    return
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

ensure_docker_engine() {
  if docker info >/dev/null 2>&1; then echo "docker engine answers"; return; fi
  if [[ $(id -u) -ne 0 ]]; then
    fail "no Docker engine answers; start it (sudo systemctl start docker) and run this again"
  fi
  clear_stale_pidfile /var/run/docker.pid dockerd
  clear_stale_pidfile /var/run/docker/containerd/containerd.pid containerd
  local running
  if running=$(live_pid /var/run/docker.pid dockerd); then
    echo "dockerd (pid $running) is running but does not answer yet; waiting for it"
  else
    echo "starting dockerd (log: /var/log/rtest-dockerd.log)"
    nohup dockerd >/var/log/rtest-dockerd.log 2>&1 </dev/null &
  fi
  local waited
  for waited in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then echo "docker engine answers after ${waited} s"; return; fi
    sleep 1
  done
  tail -n 20 /var/log/rtest-dockerd.log >&2 || true
  fail "dockerd did not answer within 60 s; its log is /var/log/rtest-dockerd.log"
}

install_rtest() {
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || fail "$PYTHON is older than 3.10; set PYTHON to a newer interpreter"
  [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q -e '.[dev]'  # the tests and the checks .ci/run makes
}

# -- docker compose (issue 16): `docker compose up -d` as the README says, offline too.
install_compose() {
  if docker compose version >/dev/null 2>&1; then echo "docker compose: $(docker compose version --short 2>/dev/null)"; return; fi
  if ! command -v docker-compose >/dev/null; then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
      echo "no docker compose; install the compose plugin (or docker-compose) to use docker-compose.yml"; return
    fi
    apt-get install -y -q --no-install-recommends docker-compose \
      || { apt-get update -q && apt-get install -y -q --no-install-recommends docker-compose; }
  fi
  # Debian 12 ships compose v1 only; a CLI plugin that hands over to it makes `docker compose ...` work.
  local plugins=/usr/local/lib/docker/cli-plugins
  [[ $(id -u) -eq 0 ]] || plugins="$HOME/.docker/cli-plugins"
  mkdir -p "$plugins"
  cat >"$plugins/docker-compose" <<'PLUGIN'
#!/bin/sh
# rtest's setup: `docker compose ARGS` -> `docker-compose ARGS` (Debian's compose v1).
if [ "$1" = docker-cli-plugin-metadata ]; then
  echo '{"SchemaVersion":"0.1.0","Vendor":"rtest setup","Version":"v1-shim","ShortDescription":"Docker Compose (docker-compose v1)"}'
  exit 0
fi
shift
exec docker-compose "$@"
PLUGIN
  chmod 755 "$plugins/docker-compose"
  docker compose version
}

prepare_compose() {
  # .env for docker-compose.yml: the offline base and ./wheels when no registry answers, and a service token.
  # CI runs no compose: it skips this (about 2 minutes offline) unless RTEST_COMPOSE=1 asks for it.
  if [[ -n "${CI:-}" && -z "${RTEST_COMPOSE:-}" ]]; then echo "CI: not preparing docker compose"; return; fi
  # Not fatal: the README's first command (images, the example) does not need compose.
  .venv/bin/python -m rtest.composeprep ${RTEST_OFFLINE:+--offline} . \
    || { echo "setup: docker compose is not prepared (see above); rerun scripts/setup.sh to retry" >&2; return; }
  local serve_dir="${RTEST_SERVE_DIR:-/var/lib/rtest-serve}"
  mkdir -p "$serve_dir" 2>/dev/null || echo "create $serve_dir (the service's workdir) before docker compose up"
}

start_phase "system packages"; install_system_packages; end_phase
start_phase "docker engine";   ensure_docker_engine;    end_phase
start_phase "venv + rtest";    install_rtest;           end_phase
start_phase "images"
# Offline (debootstrap + host wheelhouse) is chosen by itself when the public base image cannot be pulled.
.venv/bin/rtest sandbox images build ${RTEST_OFFLINE:+--offline}
end_phase
start_phase "docker compose";  install_compose || echo "setup: docker compose not installed" >&2; prepare_compose; end_phase
phase_name=""
