"""`rtest sandbox images ...`: build the SageMaker look-alike images."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from rtest.catalog import IMAGE_DIRS

images_app = typer.Typer(
    help="Build the SageMaker look-alike images (python base, scikit-learn 1.2-1, XGBoost 1.7-1).",
    no_args_is_help=True,
)
out = Console()


@images_app.command("build")
def build(
    names: Annotated[
        Optional[list[str]],
        typer.Argument(help=f"Images to build, by folder ({', '.join(IMAGE_DIRS.values())}) or tag. Default: all."),
    ] = None,
    offline: Annotated[
        Optional[bool],
        typer.Option(
            "--offline/--online",
            help="Offline: debootstrap base and a host wheelhouse, no registry needed."
            " Default: offline only when the python base image cannot be pulled.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild images that already exist.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Hide the docker build output.")] = False,
) -> None:
    """Build the images rtest runs steps in; existing ones are kept unless --force."""
    from rtest.imagebuild import build_images

    def log(line: str) -> None:
        if line.startswith("  "):  # docker build output
            if not quiet:
                out.print(f"[dim]{escape(line)}[/]", highlight=False, soft_wrap=True)
        else:
            out.print(escape(line), highlight=False, soft_wrap=True)

    built = build_images(names, offline=offline, force=force, log=log)
    if built:
        out.print(f"[green]Built[/] {', '.join(built)}")
    else:
        out.print("[green]Every requested image is already present.[/]")
