"""The swarm backend on a REAL two-node Docker Swarm: the host's engine as manager, a second dockerd in its
own network namespace as worker (scripts/swarm_lab.sh), a registry on the manager's veth address.

Everything goes through the CLI as a subprocess, as a user would run it; placement is read back
from report.json. The lab is torn down at the end even when a test fails.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rtest.testing import write_python_pipeline

pytestmark = [pytest.mark.docker, pytest.mark.swarm]

REPO = Path(__file__).resolve().parents[1]
LAB = REPO / "scripts" / "swarm_lab.sh"
WORKER = "rtest-worker1"
OUT = "/opt/ml/processing/output/out"
IN = "/opt/ml/processing/input/data"


@pytest.fixture(scope="module")
def lab(swarm_lab, docker_client):
    """The session's lab swarm (conftest.py), and nothing of rtest left on it after these tests."""
    worker = subprocess.run(["docker", "-H", swarm_lab["RTEST_LAB_WORKER_HOST"], "info"], capture_output=True,
                            timeout=60)
    assert worker.returncode == 0, worker.stderr
    yield swarm_lab
    leftovers = docker_client.api.services(filters={"label": "rtest.managed=1"})
    assert leftovers == [], [s["Spec"]["Name"] for s in leftovers]


def _rtest(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtest.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def _pipeline(root: Path, steps: dict, edges: list, instance: str = "ml.m5.large") -> list[str]:
    for step in steps.values():
        step.setdefault("config", {})["processing_instance_type"] = instance
    p = write_python_pipeline(root, steps, edges)
    return ["--dag", str(p["dag"]), "--config", str(p["config"]), "--interfaces", str(p["interfaces"]),
            "--source-root", str(root), "--workdir", str(root / "wd"), "--backend", "swarm"]


def _report(root: Path) -> dict:
    runs = sorted((root / "wd" / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    return json.loads((runs[-1] / "report.json").read_text())


def _services(docker_client, run_id: str | None = None) -> list:
    label = f"rtest.run-id={run_id}" if run_id else "rtest.managed=1"
    return docker_client.api.services(filters={"label": label})


def test_fan_out_lands_on_both_nodes_and_outputs_cross_nodes(lab, tmp_path, docker_client):
    write = f"import os; os.makedirs('{OUT}', exist_ok=True); open('{OUT}/made.txt', 'w').write(os.uname().nodename)\n"
    read = (f"import os, time; print(open('{IN}/made.txt').read()); time.sleep(2); os.makedirs('{OUT}', exist_ok=True)"
            f"; open('{OUT}/x', 'w').write('ok')\n")
    steps = {"Source": {"script": write, "outputs": {"out": OUT}}}
    steps.update({f"Fan{i}": {"script": read, "inputs": {"out": IN}, "outputs": {"res": OUT}} for i in range(4)})
    args = _pipeline(tmp_path, steps, [("Source", f"Fan{i}") for i in range(4)])
    done = _rtest("sandbox", "run", *args, "--registry", lab["RTEST_LAB_REGISTRY"],
                  "--placement", f"Source=node.hostname=={WORKER}", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = _report(tmp_path)
    assert report["steps"]["Source"]["host"] == WORKER
    fan_hosts = {report["steps"][f"Fan{i}"]["host"] for i in range(4)}
    assert fan_hosts == {WORKER, docker_client.info()["Name"]}, fan_hosts  # 2 CPUs reserved each: one per node
    assert all(report["steps"][n]["host_id"] for n in report["steps"])
    assert _services(docker_client, report["run_id"]) == []


def test_services_name_images_by_digest_so_nodes_that_hold_them_do_not_pull(lab, docker_client):
    from rtest.run.backends.swarm import SwarmBackend

    registry = lab["RTEST_LAB_REGISTRY"]
    pinned = SwarmBackend(registry=registry).pinned_ref("rtest/sagemaker-base:py3")
    assert pinned.startswith(f"{registry}/rtest/sagemaker-base@sha256:"), pinned
    image_id = docker_client.api.inspect_image("rtest/sagemaker-base:py3")["Id"]
    assert docker_client.api.inspect_image(pinned)["Id"] == image_id  # resolved locally, without the registry
    assert SwarmBackend().pinned_ref("rtest/sagemaker-base:py3") == image_id  # no registry: by image ID


def test_images_missing_on_a_node_are_listed_before_any_step(lab, tmp_path, docker_client):
    # Its own image ID (a new label): a mere tag would be an image the worker holds under another name.
    dockerfile = io.BytesIO(b"FROM rtest/sagemaker-base:py3\nLABEL rtest.lab-only=1\n")
    docker_client.images.build(fileobj=dockerfile, tag="rtest/lab-manager-only:1", rm=True)
    args = _pipeline(tmp_path, {"Solo": {"script": "print('hi')\n", "outputs": {"out": OUT}}}, [])
    spec = tmp_path / "spec.yaml"
    spec.write_text("scripts:\n  Solo:\n    image: rtest/lab-manager-only:1\n")
    try:
        done = _rtest("sandbox", "run", *args, "--spec", str(spec), cwd=tmp_path)
    finally:  # once the probe's container on the manager is gone (removing a service is asynchronous)
        _wait_for(lambda: _removed_image(docker_client, "rtest/lab-manager-only:1"), 30)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert f"node {WORKER} lacks the image rtest/lab-manager-only:1" in " ".join(output.split())
    assert "Traceback" not in output
    assert _services(docker_client) == []


def test_a_step_no_node_can_fit_fails_in_seconds_with_the_reason(lab, tmp_path, docker_client):
    args = _pipeline(tmp_path, {"Huge": {"script": "print('never')\n", "outputs": {"out": OUT}}}, [])
    started = time.monotonic()
    done = _rtest("sandbox", "run", *args, "--registry", lab["RTEST_LAB_REGISTRY"], "--memory", "500g", cwd=tmp_path)
    waited = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    reason = _report(tmp_path)["steps"]["Huge"]["failure_reason"]
    assert "no node of the swarm can take this step: it reserves 2 CPUs and 500.0 GiB" in reason, reason
    assert WORKER in reason
    print(f"unplaceable step failed after {waited:.1f} s (whole CLI)")


def test_timeout_removes_the_service_on_its_node(lab, tmp_path, docker_client):
    args = _pipeline(tmp_path, {"Slow": {"script": "import time; time.sleep(120)\n", "outputs": {"out": OUT}}}, [])
    done = _rtest("sandbox", "run", *args, "--registry", lab["RTEST_LAB_REGISTRY"], "--timeout", "3",
                  "--placement", f"node.hostname=={WORKER}", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    step = _report(tmp_path)["steps"]["Slow"]
    assert step["failure_reason"].startswith("timed out after 3 s") and step["host"] == WORKER
    assert _services(docker_client) == []
    _assert_no_containers(lab, _report(tmp_path)["run_id"])


def test_ctrl_c_stops_the_run_and_leaves_nothing(lab, tmp_path, docker_client):
    args = _pipeline(tmp_path, {"Slow": {"script": "import time; time.sleep(120)\n", "outputs": {"out": OUT}}}, [])
    child = subprocess.Popen([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", *args,
                              "--registry", lab["RTEST_LAB_REGISTRY"]], cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(lambda: any(_running_tasks(docker_client, s) for s in _services(docker_client)), 90)
        child.send_signal(signal.SIGINT)
        output, _ = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 130, output
    assert _report(tmp_path)["steps"]["Slow"]["status"] == "cancelled"
    assert _services(docker_client) == []
    _assert_no_containers(lab, _report(tmp_path)["run_id"])


def test_worker_daemon_killed_mid_step_fails_the_step_naming_the_node(lab, tmp_path, docker_client):
    """Every wait is bounded: the step's own --timeout backs up node-loss detection (Swarm marks a node down
    after about 15 s), the CLI gets a deadline, and the worker is always restarted and Ready again after."""
    args = _pipeline(tmp_path, {"OnWorker": {"script": "import time; time.sleep(300)\n", "outputs": {"out": OUT}}}, [])
    child = subprocess.Popen([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", *args, "--timeout", "120",
                              "--registry", lab["RTEST_LAB_REGISTRY"], "--placement", f"node.hostname=={WORKER}"],
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pid_file = Path("/run/rtest-lab/worker/dockerd.pid")
    try:
        _wait_for(lambda: any(_running_tasks(docker_client, s) for s in _services(docker_client)), 90)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        killed = time.monotonic()
        output, _ = child.communicate(timeout=150)
        print(f"step failed {time.monotonic() - killed:.1f} s after the worker's daemon was killed")
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=30)
        back = subprocess.run(["bash", str(LAB), "up"], capture_output=True, text=True, timeout=180)
    assert back.returncode == 0, back.stderr  # the worker back, rejoined and Ready
    assert child.returncode == 1, output
    reason = _report(tmp_path)["steps"]["OnWorker"]["failure_reason"]
    assert f"node {WORKER} stopped answering while the step ran" in reason, reason
    assert _services(docker_client) == []
    # the worker's agent stops the task once it is back
    _wait_for(lambda: _worker_containers(lab, _report(tmp_path)["run_id"]) == [], 60)


def test_a_run_through_rtest_serve_on_the_swarm(lab, tmp_path, docker_client):
    from serve_helpers import Service

    class SwarmService(Service):
        def argv(self) -> list[str]:  # no --slots: they come from the cluster's CPUs
            argv = [a for a in super().argv() if a not in ("--slots", str(self.slots))]
            return [*argv, "--backend", "swarm", "--registry", lab["RTEST_LAB_REGISTRY"]]

    args = _pipeline(tmp_path, {"A": {"script": f"import os; os.makedirs('{OUT}', exist_ok=True)\n",
                                      "outputs": {"out": OUT}}}, [])
    args = args[:args.index("--workdir")]  # the service's workdir and backend
    service = SwarmService(tmp_path / "svc", fake=False).start()
    try:
        done = _rtest("sandbox", "run", *args, "--server", service.url, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        client = httpx.Client(base_url=service.url, trust_env=False, headers=_auth(service))
        run_id = client.get("/api/runs").json()["runs"][0]["id"]
        steps = client.get(f"/api/runs/{run_id}").json()["steps"]
        assert steps[0]["host"] in {WORKER, docker_client.info()["Name"]}, steps
        metrics = client.get("/metrics").text
        assert 'rtest_steps_by_host_total{host="' in metrics
        assert "rtest_slots 4.0" in metrics  # two nodes of 2 CPUs
    finally:
        service.stop()


def _auth(service) -> dict:
    return {"Authorization": f"Bearer {service.token}"} if service.token else {}


# ---- helpers -------------------------------------------------------------------------------------


def _wait_for(check, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"not true within {timeout_s} s")


def _removed_image(docker_client, ref: str) -> bool:
    import docker.errors

    try:
        docker_client.images.remove(ref)
    except docker.errors.ImageNotFound:
        return True
    except docker.errors.APIError:
        return False
    return True


def _running_tasks(docker_client, service: dict) -> list:
    """A STEP's running tasks: a preflight probe's task runs too, briefly, before any step."""
    if service["Spec"]["Name"].startswith("rtest-probe-"):
        return []
    return [t for t in docker_client.api.tasks(filters={"service": service["ID"]})
            if t["Status"]["State"] == "running"]


def _worker_containers(lab, run_id: str) -> list[str]:
    listed = subprocess.run(["docker", "-H", lab["RTEST_LAB_WORKER_HOST"], "ps", "-aq", "--filter",
                             f"label=rtest.run-id={run_id}"], capture_output=True, text=True, timeout=30)
    return listed.stdout.split()


def _manager_containers(run_id: str) -> list[str]:
    listed = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=rtest.run-id={run_id}"], capture_output=True,
                            text=True, timeout=30)
    return listed.stdout.split()


def _assert_no_containers(lab, run_id: str) -> None:
    """Nothing of this run on either node once Swarm has acted on the removal (asynchronous on each node)."""
    _wait_for(lambda: _worker_containers(lab, run_id) == [] and _manager_containers(run_id) == [], 30)
