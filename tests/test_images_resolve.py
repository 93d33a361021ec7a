"""Images resolve like SageMaker's image lookup: framework from the SDK class, default and nearest versions,
and every missing image reported before the run with the nodes that need it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines import raised_message
from rtest.catalog import IMAGE_CATALOG, choose_image, framework_of
from rtest.errors import ImageNotFoundError
from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.userspec import parse_image_flags, parse_input_flags
from rtest.run.image_check import image_ids, missing_images_message

CATALOGUE = Path(__file__).parent / "data" / "catalogue"
SKLEARN = IMAGE_CATALOG[("sklearn", "1.2-1")]
XGBOOST = IMAGE_CATALOG[("xgboost", "1.7-1")]


@pytest.mark.parametrize(
    ("compute", "framework"),
    [
        (dict(kind="estimator", sdk_class="XGBoost"), "xgboost"),
        (dict(kind="model", sdk_class="XGBoostModel", framework_name="xgboost"), "xgboost"),
        (dict(kind="framework", sdk_class="SKLearn"), "sklearn"),
        (dict(kind="estimator", sdk_class="PyTorch"), "pytorch"),
        (dict(kind="estimator", sdk_class="PyTorch", retrieve_image=True, retrieve_framework="huggingface"), "huggingface"),
        (dict(kind="script"), "python"),
        (dict(kind="scikit-learn"), "sklearn"),
        (dict(kind="xgboost", sdk_class="ignored for a framework kind"), "xgboost"),
    ],
)
def test_framework_comes_from_the_kind_or_the_sdk_class(compute, framework):
    assert framework_of(**compute) == framework


def test_exact_version_takes_the_look_alike_without_a_warning():
    choice = choose_image("xgboost", "1.7-1")
    assert (choice.image, choice.warning) == (XGBOOST, None)


def test_a_version_with_no_look_alike_takes_the_nearest_and_says_both():
    choice = choose_image("xgboost", "1.5-1")
    assert choice.image == XGBOOST and choice.look_alike == "1.7-1" and choice.warning_code == "image-nearest-version"
    assert choice.warning.startswith("xgboost 1.5-1 -> xgboost 1.7-1: ")
    assert "--image-map xgboost:1.5-1=IMAGE" in choice.warning
    assert choose_image("sklearn", "1.0-1").image == SKLEARN
    assert choose_image("sklearn", None).warning.startswith("sklearn (no version set) -> sklearn 1.2-1")


def test_a_framework_with_no_look_alike_says_so_with_the_image_map_hint():
    choice = choose_image("pytorch", "2.1.0")
    assert choice.warning_code == "image-no-look-alike"
    assert "no look-alike image for pytorch 2.1.0" in choice.warning and "--image-map pytorch:2.1.0=IMAGE" in choice.warning


def test_the_users_image_map_wins_and_a_byo_image_comes_from_the_config():
    mine = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.5-1"
    choice = choose_image("xgboost", "1.5-1", {("xgboost", "1.5-1"): mine})
    assert (choice.image, choice.mapped, choice.warning) == (mine, True, None)
    assert choose_image("byo_container", "my.registry/graph:7").image == "my.registry/graph:7"
    assert choose_image("byo_container", None).warning_code == "image-unset"


def catalogue_plan(tmp_path: Path, edit=None, image_flags=None, interface_edit=None):
    folder = tmp_path / "catalogue"
    shutil.copytree(CATALOGUE, folder)
    if interface_edit:
        name, old, new = interface_edit
        path = folder / "interfaces" / name
        path.write_text(path.read_text().replace(old, new))
    if edit:
        config = json.loads((folder / "config.json").read_text())
        edit(config["configuration"]["specific"])
        (folder / "config.json").write_text(json.dumps(config))
    inputs = load_pipeline_inputs(folder / "dag.json", folder / "config.json", [folder / "interfaces"], folder / "project")
    user = parse_input_flags([f"TabularPrep_training.DATA={folder / 'project' / 'data' / 'sample.csv'}"])
    user.image_map.update(parse_image_flags(image_flags))
    return build_plan(inputs, user)


def test_plan_picks_images_like_the_framework(tmp_path):
    plan = catalogue_plan(tmp_path)
    train, pack = plan.scripts["BoostTraining"], plan.scripts["ModelPackaging"]
    assert (train.framework.value, train.framework.field, train.image.value) == ("xgboost", "compute.sdk_class", XGBOOST)
    # the packaging config sets no version and shares no sklearn version: the interface default applies
    assert (pack.framework_version.value, pack.framework_version.field) == ("1.0-1", "compute.framework_version_default")
    assert pack.image.value == SKLEARN
    image_warnings = [w for w in plan.warnings if w.code.startswith("image-")]
    assert [(w.node, w.code) for w in image_warnings] == [("ModelPackaging", "image-nearest-version")]
    assert "sklearn 1.0-1 -> sklearn 1.2-1" in image_warnings[0].message


def test_a_config_version_beats_the_default_and_a_mapped_image_silences_the_warning(tmp_path):
    plan = catalogue_plan(tmp_path, lambda steps: steps["ModelPackaging"].update(processing_framework_version="1.2-1"))
    assert plan.scripts["ModelPackaging"].framework_version.field == "processing_framework_version" and not [w for w in plan.warnings if w.code.startswith("image-")]
    plan = catalogue_plan(tmp_path / "again", image_flags=["sklearn:1.0-1=my/sklearn:1.0-1"])
    assert plan.scripts["ModelPackaging"].image.value == "my/sklearn:1.0-1" and not [w for w in plan.warnings if w.code.startswith("image-")]


def test_missing_look_alikes_are_listed_with_their_nodes_and_one_build_command(tmp_path):
    plan = catalogue_plan(tmp_path)
    message = missing_images_message(plan, [SKLEARN, XGBOOST])
    assert message == (
        f"2 images are missing: Image {SKLEARN} is not in the local Docker engine (needed by TabularPrep_training, ModelPackaging); "
        "build it with `rtest sandbox images build` (add `--offline` on a machine with no registry); "
        f"Image {XGBOOST} is not in the local Docker engine (needed by BoostTraining); "
        "build it with `rtest sandbox images build` (add `--offline` on a machine with no registry). "
        "One command builds them all: `rtest sandbox images build --offline sklearn xgboost`."
    )


@pytest.mark.docker
def test_every_missing_image_is_reported_at_once_before_the_run(tmp_path, docker_client):
    from rtest.run.backends.docker import DockerBackend

    def pytorch_training(steps):
        steps["BoostTraining"]["framework_version"] = "2.1.0"

    plan = catalogue_plan(tmp_path, pytorch_training, image_flags=["sklearn:1.2-1=rtest-test/absent-sklearn:1"],
                          interface_edit=("boost_training.step.yaml", "sdk_class: XGBoost", "sdk_class: PyTorch"))
    image_warnings = [(w.node, w.code) for w in plan.warnings if w.code.startswith("image-")]
    assert image_warnings == [("BoostTraining", "image-no-look-alike"), ("ModelPackaging", "image-nearest-version")]
    message = raised_message(ImageNotFoundError, image_ids, plan, DockerBackend())
    assert message.startswith("2 images are missing: ")
    assert "Image rtest-test/absent-sklearn:1 is not in the local Docker engine (needed by TabularPrep_training); pull or build it" in message
    assert "Image rtest/sagemaker-pytorch:2.1.0 is not in the local Docker engine (needed by BoostTraining); " in message
    assert "--image-map pytorch:2.1.0=IMAGE" in message and "docker pull" not in message
    assert "ModelPackaging" not in message  # its look-alike is present


def test_plan_shows_the_image_warning(tmp_path, capsys):
    from rtest.cli.main import main

    sample = CATALOGUE / "project" / "data" / "sample.csv"
    args = ["plan", "--dag", str(CATALOGUE / "dag.json"), "--config", str(CATALOGUE / "config.json"), "--interfaces",
            str(CATALOGUE / "interfaces"), "--source-root", str(CATALOGUE / "project"), "--input", f"TabularPrep_training.DATA={sample}"]
    with pytest.raises(SystemExit) as exited:
        main(args)
    out = " ".join(capsys.readouterr().out.split())
    assert exited.value.code == 0
    assert "warning: ModelPackaging: sklearn 1.0-1 -> sklearn 1.2-1: no look-alike image for 1.0-1" in out
