"""Every option declared once (rtest.options), and one run path: the CLI's parameters are the model's fields,
and `rtest sandbox run`, the factory and the service honour every run option the same way.

Steps are played by FakeBackend (registered as a backend, so each front door creates it by name as it would
the Docker one); what is checked is what the runs really did: their reports, cache keys, failures, concurrency.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from pydantic import BaseModel

from rtest.cli.main import app
from rtest.options import LocalFlags, PipelineOptions, RunFlags, RunRequest, ServiceFlags
from rtest.testing import FakeBackend, FakeStep, write_python_pipeline

MODELS: tuple[type[BaseModel], ...] = (PipelineOptions, RunFlags, LocalFlags, ServiceFlags)
# parameters that are about one command's own output or arguments, not options of a pipeline or a run
COMMAND_OWN = {"fmt", "node", "nodes", "add", "target", "out_dir", "show_class_logs"}
OUT = "/opt/ml/processing/output/out"


def _commands(command, path=()):
    subs = getattr(command, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), command


def _declared() -> dict[str, tuple[type[BaseModel], object]]:
    return {name: (model, field) for model in MODELS for name, field in model.model_fields.items()
            if isinstance(field.json_schema_extra, dict)}


def test_every_parameter_of_a_pipeline_command_is_a_model_field_declared_there_once():
    declared = _declared()
    pipeline_commands = {path: cmd for path, cmd in _commands(typer.main.get_command(app))
                         if any(p.name == "dag" for p in cmd.params)}
    assert {"discover", "requirements", "plan", "deps", "sandbox run"} <= set(pipeline_commands)
    for path, command in pipeline_commands.items():
        for param in command.params:
            if param.name in COMMAND_OWN:
                continue
            assert param.name in declared, f"`rtest {path}` takes {param.opts} but no rtest.options model has it"
            model, field = declared[param.name]
            flags = [f for f in field.json_schema_extra["flags"] for f in f.split("/")]
            assert sorted(param.opts + param.secondary_opts) == sorted(flags), (path, param.name)
            assert param.help == field.description, f"`rtest {path}` {param.opts[0]}: help not the model's"
    every_field = set(declared)
    run_params = {p.name for p in pipeline_commands["sandbox run"].params}
    assert every_field <= run_params, f"declared but not on `sandbox run`: {sorted(every_field - run_params)}"


def test_service_client_flags_are_declared_as_such_and_never_travel():
    assert not set(ServiceFlags.model_fields) & set(RunRequest.model_fields)
    assert not set(LocalFlags.model_fields) & set(RunRequest.model_fields)
    assert set(RunFlags.model_fields) <= set(RunRequest.model_fields)


def test_older_request_and_keyword_names_read_as_todays_fields():
    old = RunRequest.model_validate({"settings": {"cache": False, "timeout_s": 30, "limits": False,
                                                  "memory_bytes": 2**30, "pack_model": False}, "deps": False})
    assert (old.no_cache, old.timeout, old.no_limits, old.memory, old.model_folder, old.no_deps) == (
        True, 30, True, 2**30, True, True)
    assert RunFlags(memory="2g", max_output_bytes="1m").memory == 2 * 2**30


def test_the_one_merge_puts_explicit_values_over_the_spec_file(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("pipeline:\n  dag: from-spec.json\n  config: /spec/config.json\n  source_map: {a: /x}\n"
                    "  config_classes: [one]\nstrict: false\n")
    user = PipelineOptions(spec=spec, config=tmp_path / "c.json", source_map=["b=/y"], config_classes=["two"],
                           strict=True, wheelhouse=tmp_path).user_spec()
    where = user.pipeline
    assert where.dag == str(tmp_path / "from-spec.json") and where.config == str(tmp_path / "c.json")
    assert where.source_map == {"a": "/x", "b": "/y"} and where.config_classes == ["one", "two"]
    assert user.strict and user.wheelhouse == str(tmp_path)


# ---- the three front doors honour every run option -----------------------------------------------------------

class _NoImageStore:
    """An image store whose every use fails: dependency handling reached it, so --no-deps was not honoured."""

    def __getattr__(self, name):
        from rtest.errors import ImageError

        raise ImageError("the test engine has no image store (dependency handling ran)")


class _Recording(FakeBackend):
    """Keeps every launch: what the backend was asked for (network, limits, timeout) is what the run honoured."""

    def prepare(self, launch):
        self.launches[launch.node] = launch
        return super().prepare(launch)


def _backend() -> FakeBackend:
    steps = {"A": FakeStep(duration_s=0.05, writes={"big.bin": "x" * (2 << 20), "b.txt": "b", "c.txt": "c"}),
             "B": FakeStep(duration_s=0.05)}
    backend = _Recording(steps)
    backend.launches = {}
    backend.images = _NoImageStore()
    CREATED.append(backend)
    return backend


CREATED: list[FakeBackend] = []


@pytest.fixture(scope="module", autouse=True)
def _fake_backend():
    from rtest.run.backends import _REGISTRY, register_backend

    register_backend("fake-options", _backend)
    yield
    _REGISTRY.pop("fake-options", None)


def _pipeline(tmp_path: Path) -> dict[str, Path]:
    steps = {n: {"script": f"print('{n}')\n", "outputs": {"out": OUT}} for n in "AB"}
    paths = write_python_pipeline(tmp_path / "p", steps, [])
    (paths["src"] / "B" / "notes.txt").write_text("not imported: only a full cache key covers it\n")
    return paths


def _argv(flags: RunFlags) -> list[str]:
    """The flags as `rtest sandbox run` arguments, from the model's own declarations (as nox's to_argv)."""
    argv: list[str] = []
    for name, value in flags.model_dump(mode="json", exclude_defaults=True).items():
        flag = RunFlags.model_fields[name].json_schema_extra["flags"][0]
        values = value if isinstance(value, list) else [value]
        argv += [flag] if value is True else [part for item in values for part in (flag, str(item))]
    return argv


def _by_cli(paths, workdir: Path, flags: RunFlags) -> dict:
    from rtest.cli.main import main

    with pytest.raises(SystemExit):
        main(["sandbox", "run", "--dag", str(paths["dag"]), "--config", str(paths["config"]), "--workdir",
              str(workdir), "--backend", "fake-options", *_argv(flags)])
    run_dir = max((workdir / "runs").iterdir(), key=lambda folder: folder.stat().st_mtime_ns)
    return json.loads((run_dir / "report.json").read_text())


def _by_factory(paths, workdir: Path, flags: RunFlags) -> dict:
    from rtest.factory import InteractiveRuntimeTestingFactory

    factory = InteractiveRuntimeTestingFactory(paths["dag"], paths["config"], workspace_dir=workdir)
    done = factory.execute_dag_guided_testing(backend="fake-options", **flags.model_dump(exclude_defaults=True))
    return json.loads((Path(done["run_dir"]) / "report.json").read_text())


def _by_service(paths, workdir: Path, flags: RunFlags) -> dict:
    from rtest.serve.manager import RunManager

    manager = RunManager(workdir, slots=4, backend=_backend())
    try:
        spec = PipelineOptions(dag=paths["dag"], config=paths["config"]).user_spec()
        run_id = manager.submit(RunRequest(**dict(flags), spec=spec.model_dump(mode="json")))
        _wait(manager, run_id)
        row = manager.registry.run(run_id)
        assert row["status"] in ("succeeded", "failed"), row
    finally:
        manager.shutdown()
    return json.loads((workdir / "runs" / run_id / "report.json").read_text())


def _wait(manager, run_id: str) -> None:
    active = manager.active.get(run_id)
    if active is not None and active.thread is not None:
        active.thread.join(60)


DOORS = {"cli": _by_cli, "factory": _by_factory, "service": _by_service}
# every run option, away from its default (two sets: a cache key exists only while the cache is on)
SETTINGS = RunFlags(jobs=1, no_cache=True, no_deps=True, network="bridge", no_limits=True, timeout=77,
                    memory="64m", model_folder=True, max_output_bytes="1m")
CACHE = RunFlags(no_deps=True, cache_key="full", max_output_files=2)
PARTIAL = RunFlags(no_deps=True, skip=["A"], keep_going=True)  # then --only B --reuse <that run> --from B
# options whose effect these fake pipelines cannot show: which requirements a dependency image gets needs an
# engine with images; skipping the inference check needs a registration node (the inference tests have one)
NEEDS_ENGINE = {"install_declared", "skip_inference_check"}


def test_every_run_option_is_exercised_below():
    """A new RunFlags field fails here until the doors are shown to honour it."""
    exercised = {name for flags in (SETTINGS, CACHE, PARTIAL) for name in flags.model_fields_set}
    assert set(RunFlags.model_fields) - exercised - {"only", "reuse", "from_node"} - NEEDS_ENGINE == set()


def _outcome(report: dict) -> dict:
    return {node: (step["status"], (step["failure_reason"] or "").split(":")[0], step["cache_key"])
            for node, step in report["steps"].items()}


@pytest.mark.parametrize("door", DOORS)
def test_every_run_option_is_honoured_by_each_front_door(door, tmp_path):
    paths = _pipeline(tmp_path)
    CREATED.clear()
    report = DOORS[door](paths, tmp_path / "wd", SETTINGS)
    launch = CREATED[-1].launches["B"]
    assert (launch.timeout_s, launch.network, launch.cpus, launch.memory_bytes) == (77, "bridge", None, 64 * 2**20)
    html = (Path(report["run_dir"]) / "report.html").read_text()  # each step's settings, with where they came from
    assert all(flag in html for flag in ("--timeout", "--network", "--no-limits", "--memory", "--no-cache",
                                         "--model-folder"))
    steps = report["steps"]
    assert steps["A"]["status"] == "failed" and "bytes" in steps["A"]["failure_reason"]  # --max-output-bytes 1m
    assert steps["B"]["status"] == "succeeded" and steps["B"]["cache_key"] is None  # --no-cache
    assert CREATED[-1].max_running == 1  # --jobs 1 (two independent steps)

    cached = DOORS[door](paths, tmp_path / "wd2", CACHE)["steps"]
    assert cached["A"]["status"] == "failed" and "files" in cached["A"]["failure_reason"]  # --max-output-files 2
    imports = DOORS[door](paths, tmp_path / "wd3", CACHE.model_copy(update={"cache_key": "imports"}))["steps"]
    assert cached["B"]["cache_key"] and cached["B"]["cache_key"] != imports["B"]["cache_key"]  # --cache-key full


@pytest.mark.parametrize("door", DOORS)
def test_partial_runs_are_honoured_by_each_front_door(door, tmp_path):
    paths = _pipeline(tmp_path)
    first = DOORS[door](paths, tmp_path / "wd", PARTIAL)["steps"]
    assert first["A"]["status"] == "skipped" and first["B"]["status"] == "succeeded"  # --skip A
    earlier = DOORS[door](paths, tmp_path / "wd", RunFlags(no_deps=True))["run_id"]
    again = DOORS[door](paths, tmp_path / "wd", RunFlags(no_deps=True, only=["B"], reuse=earlier, from_node="B"))
    assert again["steps"]["A"]["status"] == "skipped" and again["steps"]["B"]["status"] in ("succeeded", "cached")


def test_the_three_doors_give_the_same_run(tmp_path):
    paths = _pipeline(tmp_path)
    outcomes = {door: _outcome(run(paths, tmp_path / door, CACHE)) for door, run in DOORS.items()}
    assert outcomes["cli"] == outcomes["factory"] == outcomes["service"], outcomes


def test_without_no_deps_every_door_prepares_dependencies_and_checks_the_network(tmp_path):
    from rtest.errors import ImageError, OptionError

    paths = _pipeline(tmp_path)
    with pytest.raises(ImageError, match="no image store"):  # the factory used to skip nothing but this check
        _by_factory(paths, tmp_path / "f", RunFlags())
    with pytest.raises(OptionError, match="--network 'no-such-net' does not exist"):
        _by_factory(paths, tmp_path / "n", RunFlags(no_deps=True, network="no-such-net"))
    from rtest.serve.manager import RunManager

    manager = RunManager(tmp_path / "s", slots=2, backend=_backend())
    try:
        spec = PipelineOptions(dag=paths["dag"], config=paths["config"]).user_spec().model_dump(mode="json")
        ids = [manager.submit(RunRequest(spec=spec)), manager.submit(RunRequest(spec=spec, network="no-such-net"))]
        for run_id in ids:
            _wait(manager, run_id)
        deps, network = (manager.registry.run(run_id) for run_id in ids)
    finally:
        manager.shutdown()
    assert deps["status"] == "error" and "no image store" in deps["message"]
    assert network["status"] == "error" and "--network 'no-such-net' does not exist" in network["message"]


def test_a_factory_run_on_a_service_forwards_every_run_option(tmp_path):
    """It used to forward only ``deps``: now the request is the same RunRequest the CLI's client sends."""
    from rtest.factory import InteractiveRuntimeTestingFactory
    from rtest.serve.registry import Registry
    from serve_helpers import running_service

    paths = _pipeline(tmp_path)
    factory = InteractiveRuntimeTestingFactory(paths["dag"], paths["config"], workspace_dir=tmp_path / "local")
    with running_service(tmp_path / "svc", env={"RTEST_FAKE_STEP_S": "0"}) as service:
        done = factory.execute_dag_guided_testing(server=service.url, upload=False,
                                                  **SETTINGS.model_dump(exclude_defaults=True))
        registry = Registry(service.workdir / "serve" / "registry.sqlite")
        try:
            request = registry.request_of(done["run_id"])
        finally:
            registry.close()
    assert RunFlags.model_validate(request) == SETTINGS
