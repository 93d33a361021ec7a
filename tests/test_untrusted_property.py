"""Property test of the untrusted-output rules: hypothesis builds random output trees of files,
folders, links (inside, outside, looping, to devices), FIFOs and undecodable names on real disk.

Whatever the tree, either rtest refuses it and copies nothing, or the copy holds only regular
files, folders and links that resolve inside the copy without looping, and never a byte of the
host canary.
A tree without links or special files is never refused.
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from properties import examples
from rtest.errors import UntrustedOutputError
from rtest.run import untrusted
from rtest.run.staging import stage_output
from rtest.run.untrusted import OutputLimits

NAMES = [b"a", b"b", b"c", b"\xff", b"d\x1b[2J"]
SECRET = "CANARY-" + secrets.token_hex(12)

name_paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3)
link_targets = st.one_of(
    st.lists(st.sampled_from([b"..", b".", *NAMES]), min_size=1, max_size=4).map(lambda parts: b"/".join(parts)),
    st.sampled_from([b"CANARY", b"CANARYDIR", b"/dev/zero", b"/etc/passwd", b"OUTROOT/a", b"OUTROOT"]),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("dir"), name_paths),
        st.tuples(st.just("file"), name_paths, st.binary(max_size=64)),
        st.tuples(st.just("link"), name_paths, link_targets),
        st.tuples(st.just("fifo"), name_paths),
    ),
    max_size=12,
)


def _build(out: bytes, ops, host: bytes) -> bool:
    """Make the tree; returns whether it holds any link or special file."""
    special = False
    for op in ops:
        kind, parts = op[0], op[1]
        path = os.path.join(out, *parts)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if kind == "dir":
                os.makedirs(path, exist_ok=True)
            elif kind == "file":
                with open(path, "xb") as handle:
                    handle.write(op[2])
            elif kind == "link":
                target = op[2].replace(b"CANARYDIR", host).replace(b"CANARY", os.path.join(host, b"canary.txt")).replace(b"OUTROOT", out)
                os.symlink(target, path)
                special = True
            else:
                os.mkfifo(path)
                special = True
        except OSError:
            continue  # the path is taken or its parent is not a folder: skip this step
    return special


def _copy_is_safe(copy: bytes) -> None:
    real_copy = os.path.realpath(copy)
    for rel, st_ in untrusted.walk(Path(os.fsdecode(copy))):
        path = os.path.join(copy, os.fsencode(rel))
        mode = st_.st_mode
        assert stat.S_ISDIR(mode) or stat.S_ISREG(mode) or stat.S_ISLNK(mode), rel
        if stat.S_ISLNK(mode):
            resolved = os.path.realpath(path)
            assert resolved == real_copy or resolved.startswith(real_copy + b"/"), (rel, os.readlink(path))
            assert stat.S_ISDIR(os.stat(path).st_mode) or stat.S_ISREG(os.stat(path).st_mode)
            if stat.S_ISDIR(os.stat(path).st_mode):  # no loop: a consumer that follows links still ends
                assert not os.path.realpath(os.path.dirname(path)).startswith(resolved.rstrip(b"/") + b"/") \
                    and os.path.realpath(os.path.dirname(path)) != resolved, (rel, os.readlink(path))
        if stat.S_ISREG(mode):
            with open(path, "rb") as handle:
                assert SECRET.encode() not in handle.read()


@pytest.mark.timeout(300)
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_any_output_is_refused_whole_or_copied_safely(ops):
    with tempfile.TemporaryDirectory() as tmp:
        root = os.fsencode(tmp)
        host, out, copy = (os.path.join(root, name) for name in (b"host", b"out", b"copy"))
        os.makedirs(host)
        os.makedirs(out)
        with open(os.path.join(host, b"canary.txt"), "w") as handle:
            handle.write(SECRET)
        special = _build(out, ops, host)
        try:
            stage_output(Path(os.fsdecode(out)), Path(os.fsdecode(copy)), label="output o", limits=OutputLimits(max_files=1000))
        except UntrustedOutputError as refusal:
            assert special, f"a tree of plain files and folders was refused: {refusal}"
            assert not os.path.exists(copy)  # refused whole: nothing copied
            assert "\x1b" not in str(refusal) and SECRET not in str(refusal)
            return
        _copy_is_safe(copy)
