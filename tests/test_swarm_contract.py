"""The swarm backend's contract without a cluster: placement rules, and how a task's life becomes a StepExit.

A fake of the few Swarm API calls the backend makes stands in where no engine can be used; the same
backend runs on a real two-node swarm in test_swarm_cluster.py.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from rtest.errors import EngineUnavailableError, PlanError
from rtest.plan.limits import GIB, NANO
from rtest.run.backends.base import StepLaunch
from rtest.run.backends.swarm import SwarmBackend, registry_name
from rtest.run.backends.swarm_placement import NodeInfo, check_constraint, plan_placement, unplaceable_reason

MANAGER = NodeInfo(id="m1", hostname="manager", nano_cpus=2 * NANO, memory_bytes=8 * GIB, role="manager")
WORKER = NodeInfo(id="w1", hostname="worker", nano_cpus=16 * NANO, memory_bytes=64 * GIB, gpus=1)


# ---- placement ------------------------------------------------------------------------------------


def test_reservations_come_from_the_instance_type_capped_at_the_largest_node():
    placed = plan_placement(instance_type="ml.m5.4xlarge", cpus=2.0, memory_bytes=8 * GIB, memory_is_users=False,
                            nodes=[MANAGER, WORKER], constraints=[])
    assert placed.nano_cpus == 16 * NANO and placed.memory_bytes == 64 * GIB  # the worker can hold it whole
    bigger = plan_placement(instance_type="ml.m5.12xlarge", cpus=2.0, memory_bytes=8 * GIB, memory_is_users=False,
                            nodes=[MANAGER, WORKER], constraints=[])
    assert bigger.nano_cpus == 16 * NANO and bigger.memory_bytes == 64 * GIB
    assert any("asks for 48 CPUs; the largest node has 16" in note for note in bigger.notes)


def test_no_limits_means_no_reservations_and_a_users_memory_is_taken_as_given():
    free = plan_placement(instance_type="ml.m5.xlarge", cpus=None, memory_bytes=None, memory_is_users=False,
                          nodes=[MANAGER], constraints=[])
    assert free.nano_cpus is None and free.memory_bytes is None
    asked = plan_placement(instance_type="ml.m5.large", cpus=2.0, memory_bytes=100 * GIB, memory_is_users=True,
                           nodes=[MANAGER, WORKER], constraints=[])
    assert asked.memory_bytes == 100 * GIB
    reason = unplaceable_reason(asked, [MANAGER, WORKER])
    assert reason and "no node of the swarm can take this step" in reason and "100.0 GiB" in reason
    assert "worker (16 CPUs, 64.0 GiB, 1 GPU)" in reason


def test_gpu_instance_types_ask_for_the_gpu_resource_and_only_gpu_nodes_fit():
    placed = plan_placement(instance_type="ml.g4dn.xlarge", cpus=2.0, memory_bytes=8 * GIB, memory_is_users=False,
                            nodes=[MANAGER, WORKER], constraints=[])
    assert placed.gpus == 1
    assert unplaceable_reason(placed, [MANAGER, WORKER]) is None
    assert "1 GPU" in unplaceable_reason(placed, [MANAGER])
    assert plan_placement(instance_type="ml.p3.8xlarge", cpus=2.0, memory_bytes=GIB, memory_is_users=False,
                          nodes=[WORKER], constraints=[]).gpus == 4


def test_instance_families_constrain_only_when_an_operator_labelled_a_node():
    unlabelled = plan_placement(instance_type="ml.c5.xlarge", cpus=2.0, memory_bytes=GIB, memory_is_users=False,
                                nodes=[MANAGER, WORKER], constraints=[])
    assert unlabelled.constraints == ()
    labelled = NodeInfo(id="w2", hostname="c5box", nano_cpus=8 * NANO, memory_bytes=16 * GIB,
                        labels={"rtest.instance-family": "ml.c5"})
    placed = plan_placement(instance_type="ml.c5.xlarge", cpus=2.0, memory_bytes=GIB, memory_is_users=False,
                            nodes=[MANAGER, labelled], constraints=["node.role!=manager"])
    assert placed.constraints == ("node.role!=manager", "node.labels.rtest.instance-family==ml.c5")
    assert unplaceable_reason(placed, [MANAGER, labelled]) is None
    assert "with node.role!=manager" in unplaceable_reason(placed, [MANAGER])


@pytest.mark.parametrize("text, fragment", [
    ("node.hostname=gpu1", "KEY==VALUE"),
    ("host==gpu1", "not a Swarm placement key"),
])
def test_bad_constraints_are_named(text, fragment):
    assert fragment in check_constraint(text)
    assert check_constraint("node.labels.zone==a") is None


def test_registry_names_replace_any_registry_host():
    assert registry_name("rtest/sagemaker-base:py3", "10.0.0.1:5000") == ("10.0.0.1:5000/rtest/sagemaker-base", "py3")
    assert registry_name("example.com:443/team/img", "reg:5000") == ("reg:5000/team/img", "latest")


# ---- a fake of the Swarm API ------------------------------------------------------------------------


class FakeSwarmAPI:
    """Just the calls SwarmBackend makes; each created service follows ``script``: a list of task states."""

    base_url = "unix://fake"

    def __init__(self, nodes: list[dict], script: list[dict]):
        self._nodes, self.script = nodes, script
        self.services: dict[str, dict] = {}
        self.polls: dict[str, int] = {}
        self.created: list[dict] = []
        self.node_state = {n["ID"]: "ready" for n in nodes}

    def info(self):
        return {"Swarm": {"LocalNodeState": "active", "ControlAvailable": True}}

    def nodes(self):
        return [{**n, "Status": {"State": self.node_state[n["ID"]]}} for n in self._nodes]

    def inspect_node(self, node_id):
        return next(n for n in self.nodes() if n["ID"] == node_id)

    def create_service(self, task_template, name, **spec):
        service_id = f"s{len(self.created)}"
        self.created.append({"name": name, "task_template": task_template, **spec})
        self.services[service_id] = {"step": 0}
        return {"ID": service_id}

    def tasks(self, filters):
        service = filters["service"]
        if service not in self.services:
            return []
        states = self.script[min(len(self.created) - 1, len(self.script) - 1)]["states"]
        step = self.services[service]["step"]
        self.services[service]["step"] = min(step + 1, len(states) - 1)
        return [{"CreatedAt": "1", "NodeID": states[step].get("node"), "Status": states[step]["status"]}]

    def remove_service(self, service_id):
        self.services.pop(service_id, None)

    def service_logs(self, *args, **kwargs):
        return iter([b"engine says hi\n"])

    def inspect_image(self, ref):
        return {"Id": "sha256:abc"}

    def create_network(self, name, **kwargs):
        return {"Id": "net1"}


class FakeClient:
    def __init__(self, api):
        self.api = api

    def info(self):
        return self.api.info()


def _node(node_id: str, hostname: str, cpus: int, gib: int) -> dict:
    return {"ID": node_id, "Description": {"Hostname": hostname, "Resources": {"NanoCPUs": cpus * NANO,
                                                                                  "MemoryBytes": gib * GIB}},
            "Spec": {"Role": "worker", "Availability": "active", "Labels": {}}}


NODES = [_node("m1", "manager", 2, 8), _node("w1", "worker", 4, 16)]
RUNNING = {"node": "w1", "status": {"State": "running", "ContainerStatus": {"ContainerID": "c1"}}}


def _launch(**extra) -> StepLaunch:
    return StepLaunch(run_id="r1", node="Train", name="rtest-r1-Train", image="img:1", command=["python3", "x.py"],
                      instance_type="ml.m5.large", cpus=2.0, memory_bytes=8 * GIB, **extra)


def _run(tmp_path: Path, script: list[dict], launch: StepLaunch | None = None, **options):
    api = FakeSwarmAPI(NODES, script)
    backend = SwarmBackend(FakeClient(api), pending_grace_s=0.05, poll_s=0.01, **options)
    exit_info = backend.run(backend.prepare(launch or _launch()), tmp_path / "log.txt", threading.Event())
    return exit_info, api


def test_a_completed_task_gives_its_exit_code_node_and_logs(tmp_path):
    done = {"node": "w1", "status": {"State": "failed", "Err": "task: non-zero exit (3)",
                                     "ContainerStatus": {"ContainerID": "c1", "ExitCode": 3}}}
    exit_info, api = _run(tmp_path, [{"states": [{"status": {"State": "pending"}}, RUNNING, done]}])
    assert exit_info.exit_code == 3 and exit_info.engine_error is None
    assert (exit_info.host, exit_info.host_id) == ("worker", "w1")
    assert "engine says hi" in (tmp_path / "log.txt").read_text()
    assert api.services == {}  # removed after its logs were read
    resources = api.created[0]["task_template"]["Resources"]
    assert resources["Reservations"] == {"NanoCPUs": 2 * NANO, "MemoryBytes": 8 * GIB}
    assert api.created[0]["task_template"]["RestartPolicy"]["Condition"] == "none"
    assert api.created[0]["task_template"]["ContainerSpec"]["Image"] == "sha256:abc"  # pinned: no pull, no registry


def test_a_task_no_node_can_ever_take_fails_within_the_grace_naming_the_reservation(tmp_path):
    pending = {"status": {"State": "pending", "Err": "no suitable node (insufficient resources on 2 nodes)"}}
    exit_info, _ = _run(tmp_path, [{"states": [pending]}], _launch(memory_is_users=True).model_copy(
        update={"memory_bytes": 100 * GIB}))
    assert exit_info.exit_code is None
    assert "no node of the swarm can take this step: it reserves 2 CPUs and 100.0 GiB" in exit_info.engine_error
    assert "Swarm: no suitable node" in exit_info.engine_error


def test_a_task_that_only_waits_for_a_busy_node_keeps_waiting(tmp_path):
    pending = {"status": {"State": "pending", "Err": "no suitable node (insufficient resources on 2 nodes)"}}
    done = {"node": "w1", "status": {"State": "complete", "ContainerStatus": {"ContainerID": "c", "ExitCode": 0}}}
    exit_info, _ = _run(tmp_path, [{"states": [pending] * 20 + [RUNNING, done]}])
    assert exit_info.exit_code == 0 and exit_info.engine_error is None


def test_an_orphaned_or_rejected_task_fails_naming_the_node(tmp_path):
    orphaned = {"node": "w1", "status": {"State": "orphaned"}}
    exit_info, _ = _run(tmp_path, [{"states": [RUNNING, orphaned]}])
    assert exit_info.engine_error == "node worker was lost while the step ran; its task was orphaned"
    rejected = {"node": "w1", "status": {"State": "rejected", "Err": "No such image: img:1"}}
    exit_info, _ = _run(tmp_path, [{"states": [rejected]}])
    assert exit_info.engine_error == "node worker rejected the step: No such image: img:1"


def test_a_node_that_stops_answering_fails_the_step_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr("rtest.run.backends.swarm_task.NODE_CHECK_S", 0.0)
    api = FakeSwarmAPI(NODES, [{"states": [RUNNING]}])
    backend = SwarmBackend(FakeClient(api), pending_grace_s=0.05, poll_s=0.01)
    handle = backend.prepare(_launch())
    threading.Timer(0.1, lambda: api.node_state.update(w1="down")).start()
    exit_info = backend.run(handle, tmp_path / "log.txt", threading.Event())
    assert exit_info.engine_error.startswith("node worker stopped answering while the step ran (node state 'down')")
    assert api.services == {}


def test_a_node_lost_before_its_task_started_fails_the_step_instead_of_waiting(tmp_path, monkeypatch):
    monkeypatch.setattr("rtest.run.backends.swarm_task.NODE_CHECK_S", 0.0)
    assigned = {"node": "w1", "status": {"State": "assigned"}}
    api = FakeSwarmAPI(NODES, [{"states": [assigned]}])  # Swarm leaves it 'assigned' on a dead node
    backend = SwarmBackend(FakeClient(api), pending_grace_s=0.05, poll_s=0.01)
    handle = backend.prepare(_launch(timeout_s=5))  # bounded: without the check it would wait for this
    threading.Timer(0.1, lambda: api.node_state.update(w1="down")).start()
    exit_info = backend.run(handle, tmp_path / "log.txt", threading.Event())
    assert exit_info.engine_error.startswith("node worker stopped answering before the step started")
    assert api.services == {}


def test_swarms_false_rejection_of_an_unstarted_task_is_placed_again(tmp_path):
    false = {"node": "w1", "status": {"State": "rejected", "Err": "assigned node no longer meets constraints"}}
    done = {"node": "m1", "status": {"State": "complete", "ContainerStatus": {"ContainerID": "c", "ExitCode": 0}}}
    exit_info, api = _run(tmp_path, [{"states": [false]}, {"states": [RUNNING, done]}])
    assert exit_info.exit_code == 0 and exit_info.host == "manager"
    assert [c["name"] for c in api.created] == ["rtest-r1-Train", "rtest-r1-Train-2"]


def test_cancel_removes_the_service_and_says_cancelled(tmp_path):
    api = FakeSwarmAPI(NODES, [{"states": [RUNNING]}])
    backend = SwarmBackend(FakeClient(api), pending_grace_s=0.05, poll_s=0.01)
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    exit_info = backend.run(backend.prepare(_launch()), tmp_path / "log.txt", cancel)
    assert exit_info.cancelled and api.services == {}


def test_not_a_manager_and_bad_placement_are_user_errors():
    class NotManager(FakeSwarmAPI):
        def info(self):
            return {"Swarm": {"LocalNodeState": "inactive"}}

    with pytest.raises(EngineUnavailableError, match="is not a Swarm manager"):
        SwarmBackend(FakeClient(NotManager(NODES, [])))
    with pytest.raises(PlanError, match="KEY==VALUE"):
        SwarmBackend(FakeClient(FakeSwarmAPI(NODES, [])), placement={"*": ["node.hostname=x"]})
