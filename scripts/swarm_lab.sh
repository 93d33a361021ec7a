#!/usr/bin/env bash
# A real two-node Docker Swarm on ONE machine, for rtest's swarm backend tests and benchmark:
# the host's engine is the manager; a second dockerd in its own network namespace is the
# worker, joined over a veth pair. A registry (Debian's docker-registry) listens on the
# manager's veth address. Traffic stays on the veth pair and loopback: the worker has no
# default route. Needs root, iproute2, nsenter/unshare (util-linux) and docker-registry.
#
#   bash scripts/swarm_lab.sh up      # idempotent; prints the environment to use
#   bash scripts/swarm_lab.sh down    # removes services, swarm, worker daemon, netns, veth
#   bash scripts/swarm_lab.sh status
set -euo pipefail

NS="${RTEST_LAB_NS:-rtest-w1}"
HOST_IF=rtw-host PEER_IF=rtw-peer
MANAGER_IP="${RTEST_LAB_MANAGER_IP:-10.77.0.1}" WORKER_IP="${RTEST_LAB_WORKER_IP:-10.77.0.2}"
WORKER_NAME="${RTEST_LAB_WORKER_NAME:-rtest-worker1}"
STATE=/run/rtest-lab
WORKER_SOCK="$STATE/worker/docker.sock"
REGISTRY="$MANAGER_IP:5000"
WORKER_DOCKER=(docker -H "unix://$WORKER_SOCK")

# shellcheck source=scripts/pidfile.sh
source "$(dirname "$0")/pidfile.sh"
say() { echo "swarm-lab: $*" >&2; }
die() { say "$*"; exit 1; }

need_tools() {
  [[ $(id -u) -eq 0 ]] || die "needs root (network namespaces and a second dockerd)"
  local missing=()
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v nsenter >/dev/null || missing+=(util-linux)
  command -v ip >/dev/null || missing+=(iproute2)
  if (( ${#missing[@]} )); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
  fi
}

net_up() {
  # After a reboot that kept /run, the namespace's file is left without its namespace (ip then fails
  # with "Peer netns reference is invalid"): make both ends anew.
  if ! ip netns exec "$NS" true 2>/dev/null; then
    ip netns del "$NS" 2>/dev/null || rm -f "/run/netns/$NS"
    ip link del "$HOST_IF" 2>/dev/null || true
    ip netns add "$NS"
  fi
  if ! ip link show "$HOST_IF" >/dev/null 2>&1; then
    ip link add "$HOST_IF" type veth peer name "$PEER_IF"
    ip link set "$PEER_IF" netns "$NS"
    ip addr add "$MANAGER_IP/24" dev "$HOST_IF"
    ip netns exec "$NS" ip addr add "$WORKER_IP/24" dev "$PEER_IF"
  fi
  ip link set "$HOST_IF" up
  ip netns exec "$NS" ip link set "$PEER_IF" up
  ip netns exec "$NS" ip link set lo up
}

# Both engines must accept the lab registry over plain HTTP. The manager is the running
# engine: its daemon.json gains the registry and a SIGHUP reloads it without a restart.
trust_registry_on_manager() {
  local cfg=/etc/docker/daemon.json
  # Only when the engine does not trust it yet: a reload is not free on an engine others share.
  docker info --format '{{json .RegistryConfig.IndexConfigs}}' | grep -q "\"$REGISTRY\"" && return
  python3 - "$cfg" "$REGISTRY" <<'PY'
import json, os, sys
path, registry = sys.argv[1], sys.argv[2]
conf = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
wanted = conf.setdefault("insecure-registries", [])
if registry not in wanted:
    wanted.append(registry)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    json.dump(conf, open(path, "w"), indent=2)
PY
  pkill -HUP -x dockerd -o || true  # the oldest dockerd is the host's engine
  sleep 1
}

worker_up() {
  mkdir -p "$STATE/worker" /var/lib/rtest-lab-worker
  # A generic resource stands in for a GPU, so GPU placement can be tested without one.
  echo "{\"insecure-registries\": [\"$REGISTRY\"], \"node-generic-resources\": [\"NVIDIA-GPU=lab-gpu0\"]}" \
    > "$STATE/worker/daemon.json"
  if ! "${WORKER_DOCKER[@]}" info >/dev/null 2>&1; then
    clear_stale_pidfile "$STATE/worker/dockerd.pid" dockerd
    clear_stale_pidfile "$STATE/worker/exec/containerd/containerd.pid" containerd
    # ip netns exec would hide the cgroup mounts; nsenter keeps them. unshare --uts: own hostname.
    nohup nsenter --net="/run/netns/$NS" unshare --uts sh -c "hostname $WORKER_NAME; exec dockerd \
      --config-file $STATE/worker/daemon.json --data-root /var/lib/rtest-lab-worker \
      --exec-root $STATE/worker/exec --pidfile $STATE/worker/dockerd.pid -H unix://$WORKER_SOCK \
      --bridge=none --iptables=false --ip-masq=false --cgroup-parent rtest-lab-worker" \
      >"$STATE/worker/dockerd.log" 2>&1 </dev/null &
    local i
    for i in $(seq 1 60); do "${WORKER_DOCKER[@]}" info >/dev/null 2>&1 && return; sleep 0.5; done
    tail -n 20 "$STATE/worker/dockerd.log" >&2
    die "the worker's dockerd did not answer within 30 s"
  fi
}

registry_up() {
  if curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1; then return; fi
  mkdir -p "$STATE" /var/lib/rtest-lab-registry
  cat >"$STATE/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: /var/lib/rtest-lab-registry}
  delete: {enabled: true}
http:
  addr: $REGISTRY
YML
  nohup docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 </dev/null &
  echo $! >"$STATE/registry.pid"
  local i
  for i in $(seq 1 40); do curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1 && return; sleep 0.25; done
  die "the registry did not answer on $REGISTRY"
}

swarm_up() {
  # A swarm kept from before a reboot comes back as "error" (the engine started before the veth
  # address existed) or "pending": leave it and make a new one; a worker in any state but active rejoins.
  local state
  state=$(docker info --format '{{.Swarm.LocalNodeState}}')
  case $state in
    active) ;;
    inactive) swarm_init ;;
    *) say "the manager's swarm is $state; making a new one"; docker swarm leave --force >/dev/null; swarm_init ;;
  esac
  if [[ $("${WORKER_DOCKER[@]}" info --format '{{.Swarm.LocalNodeState}}') != active ]]; then
    "${WORKER_DOCKER[@]}" swarm leave --force >/dev/null 2>&1 || true
    "${WORKER_DOCKER[@]}" swarm join --token "$(docker swarm join-token -q worker)" "$MANAGER_IP:2377" >/dev/null
  fi
  local i
  for i in $(seq 1 40); do
    if docker node ls --filter "name=$WORKER_NAME" --format '{{.Status}}' | grep -qx Ready; then
      # a rejoined worker leaves its old self behind, Down, under the same name
      docker node ls --filter "name=$WORKER_NAME" --format '{{.ID}} {{.Status}}' | awk '$2 == "Down" {print $1}' |
        xargs -r docker node rm --force >/dev/null
      return
    fi
    sleep 0.5
  done
  die "the worker did not become Ready in the swarm"
}

swarm_init() {
  docker swarm init --advertise-addr "$MANAGER_IP" --listen-addr "$MANAGER_IP:2377" >/dev/null
}

up() {
  need_tools; net_up; trust_registry_on_manager; registry_up; worker_up; swarm_up
  echo "RTEST_LAB_REGISTRY=$REGISTRY"
  echo "RTEST_LAB_WORKER_HOST=unix://$WORKER_SOCK"
  echo "RTEST_LAB_WORKER_NAME=$WORKER_NAME"
}

down() {
  docker service ls -q --filter label=rtest.managed=1 2>/dev/null | xargs -r docker service rm >/dev/null 2>&1 || true
  "${WORKER_DOCKER[@]}" swarm leave --force >/dev/null 2>&1 || true
  docker swarm leave --force >/dev/null 2>&1 || true
  local pid
  if pid=$(live_pid "$STATE/worker/dockerd.pid" dockerd); then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  if pid=$(live_pid "$STATE/registry.pid" docker-registry); then kill "$pid" 2>/dev/null || true; fi
  ip link del "$HOST_IF" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  unmount_leftovers
  rm -rf "$STATE"
}

# A killed worker daemon leaves its tasks' namespaces (nsfs) mounted under its exec root, and its
# data root bind-mounted on itself: unmount them (deepest first), or `rm -rf` fails and they stay.
unmount_leftovers() {
  local target
  # `|| true`: none left (a daemon stopped cleanly) must not end the script under pipefail
  { awk '{print $2}' /proc/self/mounts | grep -E "^($STATE|/var/lib/rtest-lab-worker)(/|\$)" || true; } | sort -r |
    while read -r target; do umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || true; done
}

status() {
  docker node ls 2>/dev/null || echo "no swarm"
  curl -fsS "http://$REGISTRY/v2/_catalog" 2>/dev/null || echo "no registry"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 up|down|status" ;;
esac
