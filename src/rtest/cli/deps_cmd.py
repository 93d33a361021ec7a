"""`rtest deps`: each step's requirement set with sources, what its image has, what is missing; `--add`.

(The dependency step of `rtest sandbox run` is in the one run path, rtest.session.run_request; its progress
bars are rtest.cli.progress.ConsoleObserver's.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional, overload

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rtest.cli.common import (
    AllowOutsideOpt,
    ConfigClassesOpt,
    ConfigOpt,
    DagOpt,
    ExampleOpt,
    FormatOpt,
    FrameworkPythonOpt,
    ImageMapOpt,
    InputOpt,
    InstallDeclaredOpt,
    InterfacesOpt,
    NoConfigClassesOpt,
    SourceMapOpt,
    SourceRootOpt,
    SpecOpt,
    WheelhouseOpt,
    WorkdirOpt,
)

out = Console()


def deps(
    nodes: Annotated[Optional[list[str]], typer.Argument(help="Steps to show. Default: every script step.")] = None,
    dag: DagOpt = None,
    config: ConfigOpt = None,
    interfaces: InterfacesOpt = None,
    source_root: SourceRootOpt = None,
    example: ExampleOpt = False,
    spec: SpecOpt = None,
    inputs: InputOpt = None,
    image_map: ImageMapOpt = None,
    wheelhouse: WheelhouseOpt = None,
    add: Annotated[
        Optional[tuple[str, str]],
        typer.Option(
            "--add",
            metavar="NODE SPEC",
            help="Record an extra requirement of NODE in the --spec file, e.g. --add Train 'pandas==1.5.3'.",
        ),
    ] = None,
    install_declared: InstallDeclaredOpt = False,
    fmt: FormatOpt = "text",
    workdir: WorkdirOpt = Path(".rtest"),
    source_map: SourceMapOpt = None,
    config_classes: ConfigClassesOpt = None,
    framework_python: FrameworkPythonOpt = None,
    no_config_classes: NoConfigClassesOpt = False,
    allow_source_outside_root: AllowOutsideOpt = False,
) -> int:
    """Show each step's package requirements with their sources, what its image satisfies and what is missing."""
    from rtest.cli.common import select_pipeline
    from rtest.deps.resolve import analyse
    from rtest.plan.builder import draft_plan
    from rtest.run.backends import image_store

    chosen = select_pipeline(dag=dag, config=config, interfaces=interfaces, source_root=source_root, example=example,
                             spec=spec, input_flags=inputs, image_flags=image_map, workdir=workdir,
                             source_map_flags=source_map, config_classes=config_classes,
                             framework_python=framework_python, no_config_classes=no_config_classes,
                             allow_source_outside_root=allow_source_outside_root)
    plan = draft_plan(chosen.inputs, chosen.user)
    unknown = [n for n in (nodes or []) + ([add[0]] if add else []) if n not in plan.scripts]
    if unknown:
        raise typer.BadParameter(
            f"'{unknown[0]}' is not a script step; script steps are: {', '.join(plan.scripts)}.", param_hint="NODE"
        )
    if add:
        return _add(add[0], add[1], spec)
    homes = [wheelhouse] if wheelhouse else ([Path(chosen.user.wheelhouse)] if chosen.user.wheelhouse else [])
    steps = analyse(plan, image_store(), workdir, nodes or None, user_wheelhouses=homes,
                    install_declared=install_declared)
    data = {node: _step_json(step, plan.scripts[node]) for node, step in steps.items()}
    if fmt == "json":
        from rtest.cli.render import dumps

        print(dumps(data))
    else:
        _print_steps(data)
    return 0


def _step_json(step, spec) -> dict[str, Any]:
    from rtest.deps.resolve import unmet_warnings

    env = spec.environment
    return {
        "image": step.base_image,
        "python": step.info.python,
        "requirements": [
            {**r.to_json(), "installed": step.satisfied.get(r.text) or step.info.dists.get(r.name),
             "satisfied": r.text in step.satisfied, "sagemaker_installs": step.decisions[r].install,
             "reason": step.decisions[r].reason}
            for r in step.requirements.requirements
        ],
        "missing": [r.text for r in step.missing],
        "warnings": [text for _, text in unmet_warnings({step.node: step})],
        "index_switches": [
            {
                "name": s.name,
                "file": s.file,
                "line": s.line,
                "value": env[s.name].value if s.name in env else None,
                "value_source": env[s.name].describe() if s.name in env else "not set: the script's default applies",
            }
            for s in _first_per_name(step.requirements.switches)
        ],
    }


def _first_per_name(switches: list) -> list:
    seen: dict[str, Any] = {}
    for switch in switches:
        seen.setdefault(switch.name, switch)
    return list(seen.values())


def _print_steps(data: dict[str, dict[str, Any]]) -> None:
    """One table of every requirement; steps that need nothing beyond their image listed after it."""
    table = Table(title="Step requirements", title_justify="left", title_style="bold")
    for column in ("step", "requirement", "from", "image (Python)", "image has", "status", "why"):
        table.add_column(column, overflow="fold")
    bare = []
    for node, item in data.items():
        if not item["requirements"]:
            bare.append(node)
        for r in item["requirements"]:
            where = (
                f"{_short(r['file'])}:{r['line']}" if r["file"] and r["line"] else (_short(r["file"]) or r["origin"])
            )
            table.add_row(
                node,
                escape(r["requirement"]),
                escape(f"{r['origin']} {where}"),
                f"{item['image']} ({item['python']})",
                r["installed"] or "-",
                _status(r),
                escape(r["reason"]),
            )
    if table.row_count:
        out.print(table)
    for node, item in data.items():
        for s in item["index_switches"]:
            value = "unset" if s["value"] is None else repr(s["value"])
            out.print(f"{node}: index switch [bold]{s['name']}[/] = {escape(value)} ({escape(s['value_source'])}), "
                      f"read at {escape(_short(s['file']))}:{s['line']}", highlight=False)
    for item in data.values():
        for text in item["warnings"]:
            out.print(f"[bold yellow]warning:[/] {escape(text)}", highlight=False)
    if bare:
        out.print(f"No requirements beyond their image: {', '.join(bare)}.", highlight=False)
    missing = {node: item["missing"] for node, item in data.items() if item["missing"]}
    if missing:
        out.print(
            f"`rtest sandbox run` installs what is missing into dependency images for {len(missing)} step(s), "
            "before the first step.",
            highlight=False,
        )


def _status(r: dict[str, Any]) -> str:
    if r["satisfied"]:
        return "[green]satisfied[/]"
    return "[yellow]installs[/]" if r["sagemaker_installs"] else "[bold yellow]unmet, not installed[/]"


@overload
def _short(path: str) -> str: ...
@overload
def _short(path: None) -> None: ...
@overload
def _short(path: str | None) -> str | None: ...


def _short(path: str | None) -> str | None:
    if not path:
        return path
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def _add(node: str, text: str, spec_file: Path | None) -> int:
    """Append a requirement to scripts.NODE.requirements of the spec file (validated first)."""
    import yaml

    from rtest.deps.requirements import parse_requirement
    from rtest.yamltext import load_yaml

    requirement = parse_requirement(text, "user", "--add")
    if spec_file is None:
        out.print(
            "No spec file given, so nothing was recorded. Pass --spec FILE with --add, "
            "or put this into your spec file:\n"
            f"scripts:\n  {node}:\n    requirements: [{requirement.text!r}]\n"
            f"(or from Python: factory.configure_script_testing({node!r}, requirements=[{requirement.text!r}]))",
            highlight=False,
        )
        return 2
    raw = load_yaml(spec_file.read_text(encoding="utf-8")) or {}
    scripts = raw.setdefault("scripts", {}) or {}
    raw["scripts"] = scripts
    entry = scripts.setdefault(node, {}) or {}
    scripts[node] = entry
    listed = entry.setdefault("requirements", []) or []
    if requirement.text not in listed:
        listed.append(requirement.text)
    entry["requirements"] = listed
    text_out = (
        yaml.safe_dump(raw, sort_keys=False) if spec_file.suffix != ".json" else __import__("json").dumps(raw, indent=2)
    )
    spec_file.write_text(text_out, encoding="utf-8")
    out.print(f"Recorded {requirement.text} for {node} in {spec_file} (scripts.{node}.requirements).", highlight=False)
    return 0
