"""`rtest sandbox images ...`: build the look-alike images; list them with the dependency images; prune those."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from rtest.catalog import IMAGE_DIRS
from rtest.cli.common import FormatOpt

images_app = typer.Typer(
    help="Build the look-alike images (base, sklearn 1.2-1, XGBoost 1.7-1); list and prune dependency images.",
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


@images_app.command("list")
def list_images(
    fmt: FormatOpt = "text",
) -> int:
    """The look-alike images and the dependency images rtest built: size, base and requirement set."""
    import json

    from rtest.cli.text import plain
    from rtest.imageinventory import rtest_images
    from rtest.run.backends import image_store

    rows = rtest_images(image_store())
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    table = Table(title=f"{len(rows)} rtest image(s)", title_justify="left")
    for column in ("image", "kind", "size", "created", "base", "requirements"):
        table.add_column(column, overflow="fold", no_wrap=column in ("kind", "size"))
    for row in rows:  # tags and labels are written by whoever built the image: plain text only
        table.add_row(plain(", ".join(row["tags"]) or row["id"][:19]), row["kind"], _size(row["size"]),
                      (row["created"] or "")[:19].replace("T", " "), plain(row["base"] or ""),
                      plain(", ".join(row["requirements"])))
    out.print(table)
    return 0


@images_app.command("prune")
def prune(
    older_than: Annotated[
        Optional[float], typer.Option("--older-than", min=0, help="Only dependency images built more than N days ago.")
    ] = None,
    base: Annotated[
        Optional[str],
        typer.Option("--base", help="Only dependency images built on this image (e.g. after rebuilding it)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed; remove nothing.")] = False,
) -> int:
    """Remove dependency images (rebuilt on demand by the next run that needs them); look-alikes are kept.

    Default: every dependency image no container uses; --older-than and --base narrow that down."""
    from rtest.cli.text import markup_safe
    from rtest.deps.image import dependency_images, prune_dependency_images
    from rtest.run.backends import image_store

    store = image_store()
    keep = {
        tag
        for image in dependency_images(store)
        if base is not None and image["base"] != base
        for tag in image["tags"] or [image["id"]]
    }
    removed, in_use = prune_dependency_images(
        store, keep, older_than_s=None if older_than is None else older_than * 86400, dry_run=dry_run
    )
    verb = "Would remove" if dry_run else "Removed"
    listing = f": {markup_safe(', '.join(removed))}" if removed else ""
    out.print(f"{verb} {len(removed)} dependency image(s){listing}.", highlight=False)
    if in_use:
        out.print(
            f"[yellow]Kept {len(in_use)} in use by a container:[/] {markup_safe(', '.join(in_use))}", highlight=False
        )
    return 0


def _size(size: float | None) -> str:
    if size is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return "?"
