"""The rules for files a step leaves behind (run/untrusted.py), on real files: no container needed."""

from __future__ import annotations

import errno
import os
import secrets
import socket
import stat
import tarfile
from pathlib import Path

import pytest

from rtest.errors import UntrustedOutputError
from rtest.run import layout, untrusted
from rtest.run.cache import tree_digest
from rtest.run.staging import export_output, link_tree, pack_model, stage_output
from rtest.run.untrusted import OutputLimits, copy_tree, fault_reason, read_small_text, scan_tree

pytestmark = pytest.mark.timeout(60)  # a FIFO that blocks would hang the test: fail it instead


@pytest.fixture
def canary(tmp_path) -> tuple[Path, str]:
    secret = "CANARY-" + secrets.token_hex(12)
    path = tmp_path / "host" / "canary.txt"
    path.parent.mkdir()
    path.write_text(secret)
    return path, secret


def _output(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "data.csv").write_text("a,b\n1,2\n")
    (out / "sub" / "part-0.csv").write_text("x\n")
    return out


def _refusal(out: Path, *, limits: OutputLimits = OutputLimits()) -> str:
    with pytest.raises(UntrustedOutputError) as caught:
        scan_tree(out, "output processed_data", limits)
    return str(caught.value)


def _all_bytes(root: Path) -> bytes:
    """Every regular file's bytes under root, read without following a link."""
    found = b""
    for rel, st in untrusted.walk(root):
        if stat.S_ISREG(st.st_mode):
            found += (root / rel).read_bytes()
    return found


def test_a_clean_output_copies_with_its_inner_links(tmp_path):
    out = _output(tmp_path)
    os.symlink("data.csv", out / "latest.csv")
    os.symlink("../data.csv", out / "sub" / "up.csv")
    os.symlink(str(out / "sub"), out / "abs-sub")  # absolute, but inside: kept, re-pointed relative
    os.chmod(out / "data.csv", 0o4755)
    target = tmp_path / "staged"
    stage_output(out, target, label="output processed_data")
    assert (target / "data.csv").read_text() == "a,b\n1,2\n" and (target / "sub" / "part-0.csv").read_text() == "x\n"
    assert os.readlink(target / "latest.csv") == "data.csv" and (target / "latest.csv").read_text() == "a,b\n1,2\n"
    assert os.readlink(target / "sub" / "up.csv") == "../data.csv"
    assert os.readlink(target / "abs-sub") == "sub"
    assert stat.S_IMODE(os.stat(target / "data.csv").st_mode) == 0o755  # no setuid bit carried over


def test_a_link_to_a_host_file_is_refused_and_nothing_is_copied(tmp_path, canary):
    path, secret = canary
    out = _output(tmp_path)
    os.symlink(str(path), out / "leak")
    message = _refusal(out)
    assert message == (f"output processed_data holds a symlink leak -> {path} that points outside the output; "
                       "rtest does not follow links out of a step's output.")
    target = tmp_path / "staged"
    with pytest.raises(UntrustedOutputError):
        stage_output(out, target, label="output processed_data")
    assert not target.exists()


@pytest.mark.parametrize("target", ["../../host/canary.txt", "../sub/../../host/canary.txt", "/dev/zero", "/etc/shadow"])
def test_relative_and_device_escapes_are_refused(tmp_path, canary, target):
    out = _output(tmp_path)
    os.symlink(target, out / "sub" / "x")
    assert "holds a symlink sub/x -> " + target + " that points outside the output" in _refusal(out)


def test_a_chain_of_links_that_ends_outside_is_refused(tmp_path, canary):
    out = _output(tmp_path)
    os.symlink(str(canary[0]), tmp_path / "host" / "hop")
    os.symlink("inner", out / "first")
    os.symlink(str(tmp_path / "host" / "hop"), out / "inner")
    assert "points outside the output" in _refusal(out)


def test_a_folder_link_out_is_refused(tmp_path, canary):
    out = _output(tmp_path)
    os.symlink(str(canary[0].parent), out / "hostdir")
    assert "holds a symlink hostdir -> " in _refusal(out)


@pytest.mark.parametrize("links", [{"a": ".", "b": "."}, {"sub/up": ".."}, {"sub/self": "../sub"}])
def test_link_bombs_are_refused_without_recursion(tmp_path, links):
    out = _output(tmp_path)
    for name, target in links.items():
        os.symlink(target, out / name)
    assert "loops back into its own folder; rtest refuses link loops" in _refusal(out)
    assert tree_digest(out)  # digesting never follows them either


def test_loops_and_dangling_links_are_refused(tmp_path):
    out = _output(tmp_path)
    os.symlink("b", out / "a")
    os.symlink("a", out / "b")
    assert "points at nothing or loops" in _refusal(out)
    os.unlink(out / "a"), os.unlink(out / "b")
    os.symlink("missing.csv", out / "gone")
    assert "holds a symlink gone -> missing.csv that points at nothing" in _refusal(out)


def test_fifo_socket_and_links_to_them_are_refused(tmp_path):
    out = _output(tmp_path)
    os.mkfifo(out / "sub" / "pipe")
    assert "holds a FIFO (named pipe) at sub/pipe; rtest copies only regular files" in _refusal(out)
    os.unlink(out / "sub" / "pipe")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(out / "sock"))
        assert "holds a socket at sock" in _refusal(out)
    os.unlink(out / "sock")
    os.mkfifo(tmp_path / "fifo-inside")
    os.mkfifo(out / "pipe2")
    os.symlink("pipe2", out / "to-pipe")
    assert "FIFO" in _refusal(out)


def test_a_fifo_is_never_opened(tmp_path):
    """Opening a FIFO without a writer blocks; open_regular must refuse it at once."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UntrustedOutputError, match="is a FIFO"):
        with untrusted.open_regular(fifo):
            pass
    with pytest.raises(OSError) as caught:  # O_NOFOLLOW: a link is not opened at all
        os.symlink(str(fifo), tmp_path / "link")
        with untrusted.open_regular(tmp_path / "link"):
            pass
    assert caught.value.errno == errno.ELOOP


def test_non_utf8_names_copy_byte_for_byte_and_show_escaped(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    raw = os.path.join(os.fsencode(out), b"caf\xe9-\xff.csv")
    with open(raw, "wb") as handle:
        handle.write(b"1\n")
    target = tmp_path / "staged"
    stage_output(out, target, label="output x")
    assert os.listdir(os.fsencode(target)) == [b"caf\xe9-\xff.csv"]
    assert tree_digest(out) == tree_digest(target)
    os.symlink("/etc/shadow", os.path.join(os.fsencode(out), b"l\xff\x1b[2J"))
    message = _refusal(out)
    assert "l\\xff\\x1b[2J -> /etc/shadow" in message and "\x1b" not in message


def test_file_and_byte_caps(tmp_path):
    out = _output(tmp_path)
    for i in range(50):
        (out / "sub" / f"f{i}").write_text("x" * 100)
    message = _refusal(out, limits=OutputLimits(max_files=20))
    assert "holds more than 20 files and folders" in message and "--max-output-files" in message
    message = _refusal(out, limits=OutputLimits(max_bytes=1000))
    assert "holds more than 1000 bytes of files" in message and "--max-output-bytes" in message
    assert len(scan_tree(out, "o", OutputLimits(max_files=60, max_bytes=10_000)).entries) == 53


def test_a_sparse_file_counts_its_full_size(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / "sparse", "wb") as handle:
        handle.truncate(2**40)  # a terabyte that takes no disk: copying it would
    assert "holds more than 50.0 GiB of files" in _refusal(out)


def test_deep_trees_are_refused(tmp_path):
    out = tmp_path / "out"
    deep = out
    for _ in range(untrusted.MAX_DEPTH + 2):
        deep = deep / "d"
    deep.mkdir(parents=True)
    assert f"nests folders more than {untrusted.MAX_DEPTH} levels deep" in _refusal(out)


def test_the_root_itself_must_be_a_file_or_folder(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    assert "is a FIFO (named pipe), not a file or folder" in _refusal(tmp_path / "pipe")


def test_model_packing_stores_inner_links_as_links(tmp_path):
    model = tmp_path / "model"
    (model / "weights").mkdir(parents=True)
    (model / "weights" / "w.bin").write_bytes(b"\x01\x02")
    os.symlink("weights/w.bin", model / "current.bin")
    archive = pack_model(model, tmp_path / "art") / "model.tar.gz"
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["current.bin"].issym() and members["current.bin"].linkname == "weights/w.bin"
        assert tar.extractfile("weights/w.bin").read() == b"\x01\x02"
    first = archive.read_bytes()
    assert (pack_model(model, tmp_path / "art2") / "model.tar.gz").read_bytes() == first  # still reproducible


def test_model_packing_refuses_leaks_and_fifos_without_writing_an_archive(tmp_path, canary):
    model = tmp_path / "model"
    model.mkdir()
    os.symlink(str(canary[0]), model / "leak")
    with pytest.raises(UntrustedOutputError, match="holds a symlink leak"):
        pack_model(model, tmp_path / "art")
    os.unlink(model / "leak")
    os.mkfifo(model / "pipe")
    with pytest.raises(UntrustedOutputError, match="FIFO"):
        pack_model(model, tmp_path / "art")
    assert not (tmp_path / "art" / "model.tar.gz").exists()


def test_model_packing_keeps_non_utf8_names(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    with open(os.path.join(os.fsencode(model), b"m\xff.bin"), "wb") as handle:
        handle.write(b"w")
    archive = pack_model(model, tmp_path / "art") / "model.tar.gz"
    with tarfile.open(archive) as tar:
        assert [os.fsencode(m.name) for m in tar.getmembers()] == [b"m\xff.bin"]


def test_cache_links_and_exports_follow_the_same_rules(tmp_path, canary):
    out = _output(tmp_path)
    os.symlink("data.csv", out / "latest.csv")
    link_tree(out, tmp_path / "cached")
    assert os.stat(tmp_path / "cached" / "data.csv").st_ino == os.stat(out / "data.csv").st_ino  # hard-linked
    assert os.readlink(tmp_path / "cached" / "latest.csv") == "data.csv"
    os.symlink(str(canary[0].parent), out / "hostdir")  # a folder link out: the cache must not hard-link into it
    with pytest.raises(UntrustedOutputError):
        link_tree(out, tmp_path / "cached2")
    with pytest.raises(UntrustedOutputError):
        export_output(out, tmp_path / "exported")
    assert not (tmp_path / "cached2").exists() and not (tmp_path / "exported").exists()
    assert canary[1].encode() not in _all_bytes(tmp_path / "cached")


def test_tree_digest_never_follows_links_or_opens_fifos(tmp_path, canary):
    tree = tmp_path / "src"
    tree.mkdir()
    (tree / "main.py").write_text("print(1)\n")
    os.symlink(str(canary[0]), tree / "leak")
    os.mkfifo(tree / "pipe")
    first = tree_digest(tree)
    canary[0].write_text("changed")
    assert tree_digest(tree) == first  # the target's content is not part of it
    os.unlink(tree / "leak")
    os.symlink("/elsewhere", tree / "leak")
    assert tree_digest(tree) != first  # the link's text is


def test_bounded_reads_of_the_failure_file(tmp_path, canary):
    folders = layout.step_folders(tmp_path, "S")
    folders.sm_output_dir.mkdir(parents=True)
    os.symlink(str(canary[0]), folders.failure_path)
    reason = layout.read_failure_reason(folders)
    assert canary[1] not in reason and "/opt/ml/output/failure is a symlink" in reason and "does not follow" in reason
    os.unlink(folders.failure_path)
    os.symlink("/dev/zero", folders.failure_path)
    assert "is a symlink -> /dev/zero" in layout.read_failure_reason(folders)
    os.unlink(folders.failure_path)
    os.mkfifo(folders.failure_path)
    assert "is a FIFO (named pipe), not a regular file" in layout.read_failure_reason(folders)
    os.unlink(folders.failure_path)
    with open(folders.failure_path, "wb") as handle:  # a huge failure file: only its end is read
        handle.truncate(2**33)
        handle.seek(2**33)
        handle.write(b"ValueError: the end\n")
    reason = layout.read_failure_reason(folders)
    assert reason.endswith("ValueError: the end") and len(reason) <= layout.FAILURE_REASON_CHARS + 3


def test_usage_json_that_is_a_fifo_is_ignored(tmp_path):
    folders = layout.step_folders(tmp_path, "S")
    folders.meta_dir.mkdir(parents=True)
    os.mkfifo(folders.usage_path)
    assert layout.read_usage(folders) is None
    assert read_small_text(folders.usage_path, 10, shown_as="usage.json")[1] == "usage.json is a FIFO (named pipe), not a regular file; rtest did not read it"


def test_fault_reasons_are_sentences():
    full = fault_reason(OSError(errno.ENOSPC, "No space left on device", "/w/runs/x"), "collecting the step's outputs")
    assert full == ("the disk ran out of space while rtest was collecting the step's outputs (/w/runs/x); "
                    "free space on the disk holding the workdir and rerun.")
    assert "was the workdir removed during the run?" in fault_reason(FileNotFoundError(errno.ENOENT, "gone", "/w"), "staging")


def test_copy_refuses_a_tree_larger_than_the_free_space(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / "sparse", "wb") as handle:
        handle.truncate(2**42)  # 4 TiB on paper: no disk here has that free
    with pytest.raises(OSError) as caught:
        copy_tree(scan_tree(out, "o", untrusted.UNCAPPED), tmp_path / "copy")
    assert caught.value.errno == errno.ENOSPC and not (tmp_path / "copy" / "sparse").exists()


def test_a_huge_folder_is_not_listed_whole(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for i in range(1000):
        (out / f"f{i:05d}").touch()
    listed = list(untrusted.walk(out, budget=100))
    assert len(listed) == 101  # one past the budget: enough to know the cap is exceeded
    assert len(list(untrusted.walk(out))) == 1000
    assert "holds more than 100 files" in _refusal(out, limits=OutputLimits(max_files=100))


def test_log_tails_never_follow_links_or_block(tmp_path, canary):
    from rtest.report.logtail import log_tail

    os.symlink(str(canary[0]), tmp_path / "log.txt")
    assert log_tail(tmp_path / "log.txt", 5) == ""
    os.mkfifo(tmp_path / "fifo.txt")
    assert log_tail(tmp_path / "fifo.txt", 5) == ""
    (tmp_path / "real.txt").write_text("a\nb\n")
    assert log_tail(tmp_path / "real.txt", 5) == "a\nb"
