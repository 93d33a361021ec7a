"""rtest.deps.replaced: what a dependency-image build deletes before pip replaces it (no engine: a site folder of
real files here; tests/test_deps.py builds a real image with it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rtest.deps import replaced


def install(site: Path, name: str, version: str, files: dict[str, str], installer: str = "pip") -> Path:
    """A distribution as pip leaves it: its files, and a dist-info whose RECORD lists them and itself."""
    for relative, text in files.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(text)
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text(installer + "\n")
    listed = [*files, f"{info.name}/METADATA", f"{info.name}/INSTALLER", f"{info.name}/RECORD"]
    (info / "RECORD").write_text("".join(f"{entry},,\n" for entry in listed))
    return info


def test_a_distribution_goes_file_by_file_with_the_folders_it_leaves_empty(tmp_path):
    site = tmp_path / "prefix" / "site"
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("not the step's")
    info = install(site, "tiny-pkg", "1.0", {
        "tiny_pkg/__init__.py": "", "tiny_pkg/sub/mod.py": "", "tiny_pkg/sub/__pycache__/mod.cpython-39.pyc": "",
        "../bin/tiny": "#!/bin/sh\n"})
    (site / "tiny_pkg" / "sub" / "mod.pyc").write_text("legacy, beside its .py: pip removes it too")
    (site / "tiny_pkg" / "cache.json").write_text("written at run time, not in RECORD")
    (site / "tiny_pkg" / "link").symlink_to(outside)
    with (info / "RECORD").open("a") as record:
        record.write("tiny_pkg/link,,\n")
    (site / "other").mkdir()

    [dist] = replaced.replaceable({"tiny-pkg"}, path=[str(site)], prefix=str(tmp_path / "prefix"))
    assert os.path.basename(replaced.files_of(dist)[-1]) == "RECORD"  # last: a cut-short removal stays pip's
    assert replaced.remove(dist) == 9

    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "elsewhere.txt", "prefix", "prefix/bin", "prefix/site", "prefix/site/other",
        "prefix/site/tiny_pkg", "prefix/site/tiny_pkg/cache.json"]
    assert outside.read_text() == "not the step's"  # the link went, never what it pointed at


def test_only_what_pip_installed_once_under_the_prefix_is_touched(tmp_path):
    prefix, elsewhere = tmp_path / "prefix", tmp_path / "user"
    install(prefix / "a", "by-pip", "1", {"by_pip.py": ""})
    install(prefix / "a", "by-conda", "1", {"by_conda.py": ""}, installer="conda")
    install(prefix / "a", "twice", "1", {"twice.py": ""})
    install(prefix / "b", "twice", "2", {"twice.py": ""})
    install(elsewhere, "outside", "1", {"outside.py": ""})
    no_record = install(prefix / "a", "no-record", "1", {"no_record.py": ""})
    (no_record / "RECORD").unlink()

    chosen = replaced.replaceable({"by-pip", "by-conda", "twice", "outside", "no-record", "not-installed"},
                                  path=[str(prefix / "a"), str(prefix / "b"), str(elsewhere)], prefix=str(prefix))
    assert [dist.metadata["Name"] for dist in chosen] == ["by-pip"]


def test_main_reads_pips_report_and_says_what_it_removed(tmp_path, monkeypatch, capsys):
    site = tmp_path / "site"
    install(site, "Tiny.Pkg", "1.0", {"tiny_pkg.py": ""})
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"install": [{"metadata": {"name": "tiny_pkg", "version": "2.0"}}]}))
    monkeypatch.setattr(replaced.sys, "path", [str(site)])
    monkeypatch.setattr(replaced.sys, "prefix", str(tmp_path))

    assert replaced.main(["-c", str(report)]) == 0
    assert capsys.readouterr().out == "rtest: removed Tiny.Pkg 1.0 (4 files) for pip to replace\n"
    assert list(site.iterdir()) == []
