"""A small framework-shaped package of config classes, written for rtest's tests.

It has the shape rtest meets in the field (pydantic config classes that resolve
env values for the names an interface declares, with per-class overrides, and
build their script's job arguments) and nothing else.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict


class Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="allow")
    label_name: Optional[str] = None
    max_depth: int = 6


class StepConfigBase(BaseModel):
    model_config = ConfigDict(extra="allow")
    job_type: Optional[str] = None
    source_dir: Optional[str] = None
    processing_source_dir: Optional[str] = None
    processing_entry_point: Optional[str] = None
    training_entry_point: Optional[str] = None

    @staticmethod
    def as_env_text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (list, tuple)):
            return ",".join(str(v) for v in value)
        return json.dumps(value) if isinstance(value, dict) else str(value)

    def computed_env(self) -> dict[str, Optional[str]]:
        return {}

    def get_environment_variables(self, declared: Optional[list[str]] = None) -> dict[str, str]:
        computed, env = self.computed_env(), {}
        for name in declared or []:
            if name in computed:
                if computed[name] is not None:
                    env[name] = computed[name]
            elif getattr(self, name.lower(), None) is not None:
                env[name] = self.as_env_text(getattr(self, name.lower()))
        return env

    def get_job_arguments(self) -> Optional[list[str]]:
        return None

    def job_type_flag(self) -> Optional[list[str]]:
        return None if self.job_type is None else ["--job_type", self.job_type]


class EvalConfig(StepConfigBase):
    id_name: str
    label_name: str
    comparison_mode: bool = False

    def computed_env(self) -> dict[str, Optional[str]]:
        return {"ID_FIELD": self.id_name, "LABEL_FIELD": self.label_name}

    def get_job_arguments(self) -> Optional[list[str]]:
        return self.job_type_flag()


class PayloadConfig(StepConfigBase):
    model_content_types: list[str] = ["text/csv"]
    field_defaults: dict[str, str] = {}

    def computed_env(self) -> dict[str, Optional[str]]:
        return {"CONTENT_TYPES": ",".join(self.model_content_types),
                "FIELD_DEFAULTS": json.dumps(self.field_defaults) if self.field_defaults else None}


class TrainConfig(StepConfigBase):
    hyperparameters: Hyperparameters = Hyperparameters()

    def get_job_arguments(self) -> Optional[list[str]]:
        return self.job_type_flag()  # None when job_type is unset: the flag is left out


class PackageConfig(StepConfigBase):
    inference_code_dir: Optional[str] = None

    @property
    def inference_scripts_source(self) -> str:
        return self.inference_code_dir or self.source_dir or "inference"


class LegacyConfig(StepConfigBase):
    """A collector that takes no names and returns its whole env, as older configs do."""

    threshold: float = 0.5

    def get_environment_variables(self) -> dict[str, str]:  # type: ignore[override]
        return {"THRESHOLD": str(self.threshold), "EXTRA": "legacy"}


class StrictConfig(StepConfigBase):
    must_have: int  # absent from the JSON: instantiating fails


class WriterConfig(StepConfigBase):
    """Writes into its source folder and the working folder when built, as some real config classes do."""

    rules_file: str = "rules.json"

    def model_post_init(self, __context: Any) -> None:
        from pathlib import Path

        folder = Path(self.source_dir or ".")
        (folder / self.rules_file).write_text('"rewritten by the config class"')
        (Path("generated") / "prompts").mkdir(parents=True, exist_ok=True)
        (Path("generated") / "prompts" / "p.txt").write_text("made in the working folder")
        import logging

        logging.getLogger("shaped_framework").info("WriterConfig built")
        print("WriterConfig says hello on stdout")

    def computed_env(self) -> dict[str, Optional[str]]:
        from pathlib import Path

        return {"RULES_PATH": str((Path(self.source_dir or ".") / self.rules_file).resolve())}


class RaiserConfig(StepConfigBase):
    def get_environment_variables(self, declared: Optional[list[str]] = None) -> dict[str, str]:
        raise RuntimeError("the framework cannot compute this step's env here")


class HangerConfig(StepConfigBase):
    def get_job_arguments(self) -> Optional[list[str]]:
        import time

        time.sleep(600)  # a class that waits on something that never comes
        return None
