"""The staging interface: how artifacts get into a step's inputs and out of its outputs.

The runner never assumes the backend sees the host's folders; it asks a ``Stager``.
``LocalStager`` is today's behaviour for a backend on this machine (docker): real copies into
``<run_dir>/<node>/input/<name>``, hard links for cache restores, model.tar.gz packing. A
remote backend brings its own (object store upload/download, see docs/design.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from rtest.plan.input_paths import copy_user_input
from rtest.plan.model import ScriptExecutionSpec
from rtest.plan.settings import StepSettings
from rtest.run import staging
from rtest.run.cache import StepCache
from rtest.run.layout import StepFolders
from rtest.run.untrusted import OutputLimits, scan_tree


class Stager(Protocol):

    def stage_in(
        self, source: Path, folders: StepFolders, input_name: str, *, label: str = "an upstream output"
    ) -> None:
        """Make ``source`` (an upstream output) the content of one input."""

    def stage_user_input(self, source: Path, folders: StepFolders, input_name: str, *, follow_links: bool) -> None:
        """Copy the user's file or folder into one input, under the same link rules as the plan's check."""

    def collect_out(self, spec: ScriptExecutionSpec, folders: StepFolders, settings: StepSettings) -> dict[str, Path]:
        """After success: each declared output's artifact (packed model for training), by logical name."""

    def export(self, spec: ScriptExecutionSpec, outputs: dict[str, Path]) -> None:
        """Copy outputs to the folders the user asked for (expected_outputs)."""

    def restore_cached(self, cache: StepCache, key: str, folders: StepFolders) -> dict[str, Path]:
        """A cache hit's outputs, placed where this run's consumers read them."""

    def store_cached(self, cache: StepCache, key: str, outputs: dict[str, Path], folders: StepFolders,
                     meta: dict) -> None:
        """Keep a success's outputs for later runs."""


class LocalStager:
    """Host folders bind-mounted into the container: the copy and hard-link code of run/staging and run/cache.

    What a step wrote is untrusted: every output is checked by run/untrusted's rules (no link followed,
    no special file, ``limits`` per output) before it is packed, cached, staged or exported.
    """

    def __init__(self, limits: OutputLimits = OutputLimits()) -> None:
        self.limits = limits

    def stage_in(
        self, source: Path, folders: StepFolders, input_name: str, *, label: str = "an upstream output"
    ) -> None:
        staging.stage_output(Path(source), folders.input_dir(input_name), label=label, limits=self.limits)

    def stage_user_input(self, source: Path, folders: StepFolders, input_name: str, *, follow_links: bool) -> None:
        copy_user_input(Path(source), folders.input_dir(input_name), follow_links=follow_links)

    def collect_out(self, spec: ScriptExecutionSpec, folders: StepFolders, settings: StepSettings) -> dict[str, Path]:
        outputs: dict[str, Path] = {}
        for name, item in spec.outputs.items():
            produced = folders.output_dir(name)
            label = f"output {name} ({item.container_path})"
            if spec.kind.packs(item.container_path) and settings.pack_model.value:
                outputs[name] = staging.pack_model(
                    produced, folders.root / "artifacts" / name, label=label, limits=self.limits
                )
            else:
                scan_tree(produced, label, self.limits)  # raises UntrustedOutputError: the step fails, nothing moves
                outputs[name] = produced
        return outputs

    def export(self, spec: ScriptExecutionSpec, outputs: dict[str, Path]) -> None:
        for name, item in spec.outputs.items():
            if item.export_to and name in outputs:
                staging.export_output(outputs[name], Path(item.export_to), label=f"output {name}", limits=self.limits)

    def restore_cached(self, cache: StepCache, key: str, folders: StepFolders) -> dict[str, Path]:
        return cache.restore(key, folders.root / "cached-outputs")

    def store_cached(self, cache: StepCache, key: str, outputs: dict[str, Path], folders: StepFolders,
                     meta: dict) -> None:
        cache.store(key, outputs, folders.log_path, meta)
