"""User inputs are confined (issue 7, point 2): checked at plan time, copied by the same rules, on real files."""

from __future__ import annotations

import os
import socket
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from properties import examples
from rtest.plan.input_paths import InputPathError, copy_user_input, input_path_problem

CANARY = "canary-3f9a-host-secret"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text(CANARY)
    return secret


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.csv").write_text("a\n1\n")
    (root / "sub" / "b.csv").write_text("b\n2\n")
    return root


def _all_text(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_plain_folder_and_file_are_accepted_and_copied(tmp_path):
    data = _tree(tmp_path / "data")
    assert input_path_problem(data) is None and input_path_problem(data / "a.csv") is None
    copy_user_input(data, tmp_path / "staged")
    assert (tmp_path / "staged" / "sub" / "b.csv").read_text() == "b\n2\n"
    copy_user_input(data / "a.csv", tmp_path / "one")
    assert (tmp_path / "one" / "a.csv").read_text() == "a\n1\n"


def test_root_is_refused():
    assert "file system root" in input_path_problem("/")


def test_folder_holding_the_workdir_is_refused(tmp_path):
    data = _tree(tmp_path / "project")
    assert "holds rtest's workdir" in input_path_problem(data, workdir=data / ".rtest")
    assert "holds rtest's workdir" in input_path_problem(data, workdir=data)  # the workdir itself
    assert input_path_problem(data, workdir=tmp_path / "elsewhere") is None


def test_copy_into_itself_is_refused_at_run_time_too(tmp_path):
    data = _tree(tmp_path / "project")
    with pytest.raises(InputPathError, match="copy itself into itself"):
        copy_user_input(data, data / ".rtest" / "runs" / "x" / "input")
    assert sorted(p.name for p in data.iterdir()) == [".rtest", "a.csv", "sub"]  # made the target folder only
    assert not any((data / ".rtest").rglob("*.csv"))


def test_special_files_are_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "is a FIFO" in input_path_problem(fifo)
    assert "kernel's /dev file system" in input_path_problem("/dev/null")
    assert "kernel's /proc file system" in input_path_problem("/proc")  # /proc/kmsg blocks a reader forever
    data = _tree(tmp_path / "data")
    os.mkfifo(data / "sub" / "pipe")
    assert "pipe, which is a FIFO" in input_path_problem(data)
    with pytest.raises(InputPathError, match="FIFO"):  # never blocks on it
        copy_user_input(data, tmp_path / "staged")


def test_device_file_outside_dev_is_refused(tmp_path):
    data = _tree(tmp_path / "data")
    try:
        os.mknod(data / "zero", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero's numbers: a copy would never end
    except PermissionError:
        pytest.skip("making a device file needs root or CAP_MKNOD")
    assert "zero, which is a character device" in input_path_problem(data)
    with pytest.raises(InputPathError, match="character device"):
        copy_user_input(data, tmp_path / "staged")


def test_followed_link_may_not_lead_into_the_workdir(tmp_path):
    data = _tree(tmp_path / "data")
    (data / "wd").symlink_to(tmp_path)
    problem = input_path_problem(data, follow_links=True, workdir=tmp_path / ".rtest")
    assert "holds rtest's workdir" in problem


def test_socket_inside_folder_is_refused(tmp_path):
    data = _tree(Path(tempfile.mkdtemp(dir="/tmp")))  # socket paths must be short
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(data / "s.sock"))
        assert "is a socket" in input_path_problem(data)
    finally:
        server.close()


def test_link_inside_is_followed_link_outside_is_refused_unless_allowed(tmp_path, outside):
    data = _tree(tmp_path / "data")
    (data / "inner").symlink_to("sub/b.csv")
    (data / "innerdir").symlink_to("sub")
    assert input_path_problem(data) is None
    copy_user_input(data, tmp_path / "staged")
    assert (tmp_path / "staged" / "inner").read_text() == "b\n2\n" and not (tmp_path / "staged" / "inner").is_symlink()
    assert (tmp_path / "staged" / "innerdir" / "b.csv").is_file()

    (data / "leak").symlink_to(outside)
    problem = input_path_problem(data)
    assert "leak" in problem and "points outside the input folder" in problem and "--follow-input-links" in problem
    with pytest.raises(InputPathError):
        copy_user_input(data, tmp_path / "staged2")
    assert CANARY not in _all_text(tmp_path / "staged2")

    assert input_path_problem(data, follow_links=True) is None
    copy_user_input(data, tmp_path / "staged3", follow_links=True)
    assert (tmp_path / "staged3" / "leak").read_text() == CANARY


def test_loops_and_dangling_links_are_a_sentence(tmp_path):
    data = _tree(tmp_path / "data")
    (data / "a").symlink_to("b")
    (data / "b").symlink_to("a")
    assert "symlink loop" in input_path_problem(data)
    bomb = _tree(tmp_path / "bomb")
    (bomb / "x").symlink_to(".")
    (bomb / "y").symlink_to(".")
    assert "symlink loop" in input_path_problem(bomb)
    assert "symlink loop" in input_path_problem(bomb, follow_links=True)
    with pytest.raises(InputPathError, match="loop"):
        copy_user_input(bomb, tmp_path / "staged", follow_links=True)
    assert sum(1 for _ in (tmp_path / "staged").rglob("*")) < 10  # no exponential copy
    dangling = _tree(tmp_path / "dangling")
    (dangling / "gone").symlink_to("nowhere")
    assert "target does not exist" in input_path_problem(dangling)


def test_follow_links_outside_loop_is_still_caught(tmp_path):
    outer = tmp_path / "outer"
    data = _tree(outer / "data")
    (data / "up").symlink_to(outer)  # outside the folder, and holding it: a loop once followed
    assert "outside" in input_path_problem(data)
    assert "symlink loop" in input_path_problem(data, follow_links=True)


# ---- generated trees --------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c", "d"])
LINK_TARGETS = st.one_of(
    st.sampled_from([".", "..", "../..", "a", "b", "c/d", "../outside", "../outside/secret.txt", "/etc/passwd", "nowhere", "../b", "/", "/proc/self", "/dev/zero"]),
    st.builds(lambda *parts: "/".join(parts), NAMES, NAMES),
)
ENTRIES = st.lists(
    st.tuples(st.lists(NAMES, min_size=0, max_size=2), NAMES, st.sampled_from(["file", "dir", "link"]), LINK_TARGETS),
    max_size=12,
)


def _build(root: Path, entries) -> None:
    for parents, name, kind, target in entries:
        folder = root.joinpath(*parents)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            if os.path.lexists(path):
                continue
            if kind == "file":
                path.write_text(f"data {name}\n")
            elif kind == "dir":
                path.mkdir()
            else:
                path.symlink_to(target)
        except OSError:  # a parent is a file or a link: that tree cannot be built, skip the entry
            continue


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ENTRIES, st.booleans())
def test_generated_trees_never_leak_never_hang_never_crash(entries, follow):
    """Whatever links a tree holds: the check answers with a sentence or None, and the copy obeys the same answer."""
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        (base / "outside").mkdir()
        (base / "outside" / "secret.txt").write_text(CANARY)
        data = base / "in" / "data"
        data.mkdir(parents=True)
        _build(data, entries)
        problem = input_path_problem(data, follow_links=follow)
        assert problem is None or isinstance(problem, str)
        staged = base / "staged"
        try:
            copy_user_input(data, staged, follow_links=follow)
        except InputPathError as exc:
            assert problem is not None, f"the copy refused what the plan accepted: {exc}"
            return
        assert problem is None, f"the plan refused what the copy took: {problem}"
        assert not any(p.is_symlink() for p in staged.rglob("*"))  # links are resolved, never recreated
        if not follow:
            assert CANARY not in _all_text(staged)


def test_link_bomb_without_a_loop_is_stopped(tmp_path):
    """Two links per level to the next level: no loop, yet 2**depth copies. Stopped, not copied."""
    data = tmp_path / "data"
    levels = [data / f"l{i}" for i in range(20)]
    for level in levels:
        level.mkdir(parents=True)
    (levels[-1] / "f.txt").write_text("x")
    for upper, lower in zip(levels, levels[1:]):
        for name in ("a", "b"):
            (upper / name).symlink_to(os.path.relpath(lower, upper))
    problem = input_path_problem(data)
    assert "through links more than 16 times" in problem and "link bomb" in problem
    with pytest.raises(InputPathError, match="link bomb"):
        copy_user_input(data, tmp_path / "staged")
    assert sum(1 for _ in (tmp_path / "staged").rglob("*")) < 2000
