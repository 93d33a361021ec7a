"""Where a step may run on a Docker Swarm: what it reserves, what it is constrained to, and which nodes fit.

Pure functions over the nodes' descriptions (``docker node inspect`` dicts), so the rules are
tested without a cluster. The Swarm scheduler does the real placing; rtest only computes the
service's resources and constraints, and says in one sentence why a step that stays pending
can never be placed, instead of waiting forever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rtest.plan.limits import GIB, NANO, instance_shape

# Node label an operator sets to say which instance families a node stands in for, e.g.
# `docker node update --label-add rtest.instance-family=ml.m5 NODE`. Only when at least one
# node carries it do steps get constrained by family: an unlabelled cluster takes any step.
FAMILY_LABEL = "rtest.instance-family"
GPU_RESOURCE = "NVIDIA-GPU"  # the generic resource name dockerd's node-generic-resources advertise

# GPUs per SageMaker GPU instance type (AWS's published table); a GPU family not listed asks for one.
GPUS: dict[str, int] = {
    "ml.g4dn.12xlarge": 4, "ml.g4dn.metal": 8, "ml.g5.12xlarge": 4, "ml.g5.24xlarge": 4, "ml.g5.48xlarge": 8,
    "ml.p3.8xlarge": 4, "ml.p3.16xlarge": 8, "ml.p3dn.24xlarge": 8, "ml.p4d.24xlarge": 8, "ml.p5.48xlarge": 8,
}
_GPU_FAMILY = re.compile(r"^ml\.(g\d|p\d)[a-z]*\.")
_CONSTRAINT = re.compile(r"^\s*([\w.\-]+)\s*(==|!=)\s*(.+?)\s*$")


def instance_family(instance_type: str | None) -> str | None:
    """'ml.m5.xlarge' -> 'ml.m5'."""
    if not instance_type or not instance_type.startswith("ml.") or instance_type.count(".") < 2:
        return None
    return instance_type.rsplit(".", 1)[0]


def gpus_for(instance_type: str | None) -> int:
    if not instance_type:
        return 0
    if instance_type in GPUS:
        return GPUS[instance_type]
    return 1 if _GPU_FAMILY.match(instance_type) else 0


@dataclass(frozen=True)
class NodeInfo:
    id: str
    hostname: str
    nano_cpus: int
    memory_bytes: int
    labels: dict[str, str] = field(default_factory=dict)
    role: str = "worker"
    ready: bool = True  # Status.State == ready and Availability == active
    gpus: int = 0

    @classmethod
    def from_inspect(cls, node: dict) -> NodeInfo:
        description = node.get("Description") or {}
        resources = description.get("Resources") or {}
        generic = resources.get("GenericResources") or []
        gpus = sum(1 for g in generic if (g.get("NamedResourceSpec") or {}).get("Kind") == GPU_RESOURCE)
        gpus += sum(int((g.get("DiscreteResourceSpec") or {}).get("Value", 0)) for g in generic
                    if (g.get("DiscreteResourceSpec") or {}).get("Kind") == GPU_RESOURCE)
        spec = node.get("Spec") or {}
        status = node.get("Status") or {}
        return cls(
            id=node["ID"], hostname=description.get("Hostname", node["ID"][:12]),
            nano_cpus=int(resources.get("NanoCPUs", 0)), memory_bytes=int(resources.get("MemoryBytes", 0)),
            labels=dict(spec.get("Labels") or {}), role=spec.get("Role", "worker"),
            ready=status.get("State") == "ready" and spec.get("Availability", "active") == "active", gpus=gpus,
        )

    def describe(self) -> str:
        extra = f", {self.gpus} GPU" if self.gpus else ""
        labels = f", labels {self.labels}" if self.labels else ""
        return f"{self.hostname} ({self.nano_cpus / NANO:g} CPUs, {self.memory_bytes / GIB:.1f} GiB{extra}{labels})"


@dataclass(frozen=True)
class Placement:
    """What one step's service asks of the swarm."""

    nano_cpus: int | None = None  # reserved and limited
    memory_bytes: int | None = None
    gpus: int = 0
    constraints: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # caps applied, said once in the step's log

    def describe(self) -> str:
        parts = []
        if self.nano_cpus:
            parts.append(f"{self.nano_cpus / NANO:g} CPUs")
        if self.memory_bytes:
            parts.append(f"{self.memory_bytes / GIB:.1f} GiB")
        if self.gpus:
            parts.append(f"{self.gpus} GPU")
        asked = " and ".join(parts) or "nothing"
        where = f" with {', '.join(self.constraints)}" if self.constraints else ""
        return f"reserves {asked}{where}"


def plan_placement(*, instance_type: str | None, cpus: float | None, memory_bytes: int | None,
                   memory_is_users: bool, nodes: list[NodeInfo], constraints: list[str]) -> Placement:
    """Reservations from the instance type, capped at the largest node (as the docker backend caps at its host)."""
    ready = [n for n in nodes if n.ready] or nodes
    notes: list[str] = []
    nano = mem = None
    if cpus is not None or memory_bytes is not None:  # limits are on
        vcpus, gib = instance_shape(instance_type) if instance_type else (cpus or 0, (memory_bytes or 0) / GIB)
        biggest_cpu = max((n.nano_cpus for n in ready), default=0)
        biggest_mem = max((n.memory_bytes for n in ready), default=0)
        nano = min(int(vcpus * NANO), biggest_cpu) if vcpus else None
        if nano is not None and nano < vcpus * NANO:
            notes.append(f"{instance_type} asks for {vcpus:g} CPUs; the largest node has {biggest_cpu / NANO:g}")
        if memory_is_users and memory_bytes:
            mem = memory_bytes  # the user's --memory is taken as given: too large for every node is an error
        elif gib:
            mem = min(int(gib * GIB), biggest_mem)
            if mem < gib * GIB:
                notes.append(f"{instance_type} asks for {gib:g} GiB; the largest node has {biggest_mem / GIB:.1f}")
    wanted = list(constraints)
    family = instance_family(instance_type)
    if family and any(FAMILY_LABEL in n.labels for n in nodes):
        wanted.append(f"node.labels.{FAMILY_LABEL}=={family}")
    return Placement(nano_cpus=nano, memory_bytes=mem, gpus=gpus_for(instance_type), constraints=tuple(wanted),
                     notes=tuple(notes))


def check_constraint(text: str) -> str | None:
    """None when ``text`` is a constraint Swarm takes (key==value or key!=value), else what is wrong."""
    match = _CONSTRAINT.match(text)
    if not match:
        return (f"'{text}' is not a placement constraint; write it as KEY==VALUE or KEY!=VALUE"
                " (e.g. node.hostname==gpu1)")
    key = match.group(1)
    if not (key in {"node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch"}
            or key.startswith(("node.labels.", "engine.labels."))):
        return f"'{key}' is not a Swarm placement key; use node.hostname, node.id, node.role or node.labels.NAME"
    return None


def satisfies(node: NodeInfo, constraint: str) -> bool | None:
    """Whether ``node`` meets ``constraint``; None when rtest cannot tell (engine labels, platform)."""
    match = _CONSTRAINT.match(constraint)
    if not match:
        return None
    key, op, value = match.groups()
    if key == "node.hostname":
        actual: str | None = node.hostname
    elif key == "node.id":
        actual = node.id
    elif key == "node.role":
        actual = node.role
    elif key.startswith("node.labels."):
        actual = node.labels.get(key[len("node.labels."):])
    else:
        return None
    return (actual == value) if op == "==" else (actual != value)


def unplaceable_reason(placement: Placement, nodes: list[NodeInfo]) -> str | None:
    """A sentence when no node of the swarm could EVER take the step (busy nodes are not a reason)."""
    ready = [n for n in nodes if n.ready]
    if not ready:
        return "no node of the swarm is ready and active"
    fitting = []
    for node in ready:
        if any(satisfies(node, c) is False for c in placement.constraints):
            continue
        if placement.nano_cpus and node.nano_cpus < placement.nano_cpus:
            continue
        if placement.memory_bytes and node.memory_bytes < placement.memory_bytes:
            continue
        if placement.gpus and node.gpus < placement.gpus:
            continue
        fitting.append(node)
    if fitting:
        return None
    listed = "; ".join(n.describe() for n in ready)
    return f"no node of the swarm can take this step: it {placement.describe()}; the nodes are {listed}"
