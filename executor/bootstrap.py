"""rtest's in-container bootstrap: run ONE SageMaker job's script as the service would.

Mounted read-only at /opt/rtest/executor and started as
``python3 /opt/rtest/executor/bootstrap.py -- <job args>``. Standard library only,
Python >= 3.8, because it runs inside whatever image the step uses.

Configured by environment:
  RTEST_JOB_KIND     processing | training | inference-check (rtest.jobs); any other kind runs as processing does
  RTEST_ENTRY_POINT  absolute container path of the script
  RTEST_LOG          log file the script's stdout and stderr go to (appended)
  RTEST_META_DIR     where usage.json is written
  RTEST_CODE_DIR     working folder for processing (default: the script's folder)
  RTEST_NUM_CPUS     SM_NUM_CPUS when rtest limits the CPUs (default: os.cpu_count())
  RTEST_NUM_GPUS     SM_NUM_GPUS (default 0)
  RTEST_MAX_LOG_BYTES  cap of the script's output in the log: its first and last half kept (0 or unset: none)
  RTEST_OPT_ML       prefix standing in for /opt/ml (host-side tests only)
"""

import io
import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time

TAIL_BYTES = 64 * 1024
TRACEBACK_HEADER = "Traceback (most recent call last):"
NOTE_PREFIX = "[rtest] "  # our own lines in the log, never part of a failure reason


def main(argv):
    job_args = argv[1:]
    if job_args[:1] == ["--"]:
        job_args = job_args[1:]
    env = os.environ
    kind = env.get("RTEST_JOB_KIND", "processing")
    entry = env.get("RTEST_ENTRY_POINT", "")
    ml = env.get("RTEST_OPT_ML", "/opt/ml").rstrip("/")
    log_path = env.get("RTEST_LOG", "/opt/rtest/log.txt")
    meta_dir = env.get("RTEST_META_DIR", "/opt/rtest/meta")
    failure_path = ml + "/output/failure"
    started = time.time()

    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    if not entry or not os.path.isfile(entry):
        message = missing_entry_message(entry)
        note(log_fd, message)
        write_text(failure_path, message)
        write_usage(meta_dir, 2, started)
        return 2

    child_env = dict(env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")  # a killed script still leaves its last lines in the log
    if kind == "training":
        code_dir = ml + "/code"
        toolkit_env, hp_args = training_environment(ml, entry)
        child_env.update(toolkit_env)
        command = [sys.executable, entry] + hp_args + job_args
        for folder in (ml + "/model", ml + "/output/data"):
            make_folder(folder)
    elif kind == "inference-check":  # the handler is not a script: executor/inference_check.py calls it
        code_dir = ml + "/model"
        command = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "inference_check.py")]
        make_folder(code_dir)
    else:
        code_dir = env.get("RTEST_CODE_DIR") or os.path.dirname(entry)
        command = [sys.executable, entry] + job_args

    note(log_fd, "%s job: %s (cwd %s, uid %d:%d)" % (kind, " ".join(command[1:]), code_dir, os.getuid(), os.getgid()))
    try:
        exit_code = run_child(command, child_env, code_dir, log_fd, int(env.get("RTEST_MAX_LOG_BYTES") or 0))
    except OSError as exc:  # no interpreter, no working folder: nothing ran, so say why plainly
        exit_code = 127
        message = "Could not start %s: %s\n" % (os.path.basename(entry), exc)
        note(log_fd, message)
        write_text(failure_path, message)
    finish(exit_code, kind, entry, log_path, failure_path, ml)
    write_usage(meta_dir, exit_code, started)
    note(log_fd, "script exited with code %d after %.1f s" % (exit_code, time.time() - started))
    os.close(log_fd)
    return exit_code


# ---- the child process ---------------------------------------------------------------------


def run_child(command, child_env, cwd, log_fd, max_log_bytes=0):
    """Without a cap, output goes to the log file's descriptor directly; with one, through a pipe and CappedLog."""
    state = {"child": None, "pending": None}

    def forward(signum, frame):
        if state["child"] is None:
            state["pending"] = signum
        else:
            state["child"].send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    if not max_log_bytes:
        child = subprocess.Popen(command, cwd=cwd, env=child_env, stdin=subprocess.DEVNULL, stdout=log_fd,
                                 stderr=log_fd)
    else:
        reader, writer = os.pipe()
        try:
            child = subprocess.Popen(command, cwd=cwd, env=child_env, stdin=subprocess.DEVNULL, stdout=writer,
                                     stderr=writer)
        except OSError:
            os.close(reader)
            raise
        finally:
            os.close(writer)
    state["child"] = child
    if state["pending"] is not None:
        child.send_signal(state["pending"])
    if max_log_bytes:
        pump(reader, child, CappedLog(log_fd, max_log_bytes))
    code = child.wait()
    return 128 - code if code < 0 else code  # killed by signal N -> 128+N, as a shell reports it


def pump(reader, child, sink):
    """Copy the script's output until it exits; a background process that keeps the pipe open cannot hold us."""
    try:
        while True:
            ready, _, _ = select.select([reader], [], [], 0.5)
            if ready:
                chunk = os.read(reader, 1 << 16)
                if not chunk:
                    break
                sink.write(chunk)
            elif child.poll() is not None:
                os.set_blocking(reader, False)
                try:
                    while True:
                        chunk = os.read(reader, 1 << 16)
                        if not chunk:
                            break
                        sink.write(chunk)
                except BlockingIOError:
                    pass
                break
    finally:
        os.close(reader)
        sink.close()


class CappedLog:
    """The first half of the cap goes to the log as it comes; the last half is kept in a ring (a temporary file,
    so the container's memory is not spent on it) and written after a line saying how much was dropped."""

    def __init__(self, fd, cap):
        self.fd, self.cap = fd, cap
        self.head_left = cap - cap // 2
        self.tail_cap = cap // 2
        self.ring = None
        self.written = 0  # bytes past the head, in all

    def write(self, data):
        if self.head_left > 0:
            part = data[:self.head_left]
            write_all(self.fd, part)
            self.head_left -= len(part)
            data = data[len(part):]
        if not data or not self.tail_cap:
            self.written += len(data)
            return
        if self.ring is None:
            try:
                self.ring = tempfile.TemporaryFile()
            except OSError:  # no writable temporary folder in this image: keep the tail in memory instead
                self.ring = io.BytesIO()
        total = self.written + len(data)
        data = data[-self.tail_cap:]
        start = (total - len(data)) % self.tail_cap
        first = data[:self.tail_cap - start]
        self.ring.seek(start)
        self.ring.write(first)
        if len(first) < len(data):
            self.ring.seek(0)
            self.ring.write(data[len(first):])
        self.written = total

    def close(self):
        if self.ring is None and not self.written:
            return
        kept = min(self.written, self.tail_cap)
        dropped = self.written - kept
        if dropped:
            write_all(self.fd, dropped_note(dropped, self.cap))
        if self.ring is not None:
            end = self.written % self.tail_cap
            parts = [(end, kept - end), (0, end)] if self.written >= self.tail_cap else [(0, kept)]
            for offset, count in parts:
                self.ring.seek(offset)
                while count > 0:
                    chunk = self.ring.read(min(count, 1 << 20))
                    if not chunk:
                        break
                    write_all(self.fd, chunk)
                    count -= len(chunk)
            self.ring.close()


def dropped_note(dropped, cap):
    """Same words as the host's (rtest/run/logcap.py dropped_line)."""
    text = "\n[rtest] ... {:,} bytes of output dropped here: the log keeps its first and last {:,} bytes " \
           "(--max-log-bytes {:,}) ...\n".format(dropped, cap // 2, cap)
    return text.encode()


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def finish(exit_code, kind, entry, log_path, failure_path, ml):
    if exit_code != 0:
        if not has_content(failure_path):  # the script's own failure text wins
            write_text(failure_path, failure_text(entry, exit_code, log_path))
    elif kind == "training":
        write_text(ml + "/output/success", "")


def failure_text(entry, exit_code, log_path):
    tail = read_tail(log_path)
    start = tail.rfind(TRACEBACK_HEADER)
    if start >= 0:
        traceback = tail[start:].rstrip()
        # The exception line first: SageMaker shows a failure file's beginning (FailureReason is cut at 1 KB).
        last = exception_line(traceback)
        return (last + "\n\n" if last else "") + traceback + "\n"
    last_lines = [line for line in tail.splitlines() if line.strip() and not line.startswith(NOTE_PREFIX)][-20:]
    text = "Script %s exited with code %d" % (os.path.basename(entry), exit_code)
    if last_lines:
        text += "; last lines of its log:\n" + "\n".join(last_lines)
    return text + "\n"


def exception_line(traceback):
    """The first unindented line after the last frame: ``ValueError: bad column x``."""
    lines = traceback.splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith('  File "')]
    for line in lines[(frames[-1] + 1) if frames else 1:]:
        if line.strip() and not line[:1].isspace():
            return line.strip()
    return None


def read_tail(path):
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - TAIL_BYTES))
            return log.read().decode("utf-8", "replace")
    except OSError:
        return ""


# ---- what the sagemaker-training toolkit sets up -------------------------------------------


def training_environment(ml, entry):
    """SM_* variables and hyperparameter arguments, as sagemaker-training computes them."""
    config_dir = ml + "/input/config"
    raw_hps = read_json(config_dir + "/hyperparameters.json", {})
    decoded = dict((key, decode_hyperparameter(value)) for key, value in raw_hps.items())
    # The toolkit keeps sagemaker_* keys (program, submit_directory, ...) out of the script's hyperparameters.
    framework_params = dict((k, v) for k, v in decoded.items() if k.startswith("sagemaker_"))
    hps = dict((k, v) for k, v in decoded.items() if not k.startswith("sagemaker_"))
    input_data_config = read_json(config_dir + "/inputdataconfig.json", {})
    resource_config = read_json(config_dir + "/resourceconfig.json", {})
    channels = sorted(input_data_config)
    current_host = resource_config.get("current_host", "algo-1")
    hp_args = to_cmd_args(hps)
    props = {
        "additional_framework_parameters": framework_params,
        "channel_input_dirs": dict((c, ml + "/input/data/" + c) for c in channels),
        "current_host": current_host,
        "current_instance_type": resource_config.get("current_instance_type", "local"),
        "framework_module": None,  # script mode: the toolkit runs the user's entry point itself
        "hosts": resource_config.get("hosts", [current_host]),
        "hyperparameters": hps,
        "input_config_dir": config_dir,
        "input_data_config": input_data_config,
        "input_dir": ml + "/input",
        "is_master": True,
        "job_name": os.environ.get("TRAINING_JOB_NAME", ""),
        "log_level": 20,
        "master_hostname": current_host,
        "model_dir": ml + "/model",
        "module_dir": ml + "/code",
        "module_name": os.path.splitext(os.path.basename(entry))[0],
        "network_interface_name": resource_config.get("network_interface_name", "eth0"),
        "num_cpus": int(os.environ.get("RTEST_NUM_CPUS") or os.cpu_count() or 1),
        "num_gpus": int(os.environ.get("RTEST_NUM_GPUS") or 0),
        "output_data_dir": ml + "/output/data",
        "output_dir": ml + "/output",
        "output_intermediate_dir": ml + "/output/intermediate",
        "resource_config": resource_config,
        "user_entry_point": os.path.basename(entry),
    }
    exported = dict((key, props[key]) for key in (
        "current_host", "current_instance_type", "framework_module", "hosts", "input_config_dir", "input_data_config",
        "input_dir",
        "log_level", "model_dir", "module_dir", "module_name", "network_interface_name", "num_cpus", "num_gpus",
        "output_data_dir", "output_dir", "output_intermediate_dir", "resource_config", "user_entry_point"))
    exported["channels"] = channels
    exported["hps"] = hps
    exported["framework_params"] = framework_params
    exported["user_args"] = hp_args
    exported["training_env"] = props
    for channel in channels:
        exported["channel_" + channel] = props["channel_input_dirs"][channel]
    for name, value in hps.items():
        exported["hp_" + name] = value
    return dict(("SM_" + key.upper(), env_text(value)) for key, value in exported.items()), hp_args


def decode_hyperparameter(value):
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def env_text(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def to_cmd_args(hps):
    """sagemaker_training.mapping.to_cmd_args: sorted keys, `-k` for one letter, str() of values, dicts as k=v,..."""
    args = []
    for key in sorted(hps):
        args.append(("--%s" if len(key) > 1 else "-%s") % key)
        value = hps[key]
        if isinstance(value, dict):
            args.append(",".join("%s=%s" % (k, v) for k, v in sorted(value.items())))
        else:
            args.append("" if value is None else str(value))
    return args


# ---- small helpers ---------------------------------------------------------------------------


def missing_entry_message(entry):
    if not entry:
        return "rtest: RTEST_ENTRY_POINT is not set, so there is no script to run.\n"
    folder = os.path.dirname(entry)
    try:
        present = ", ".join(sorted(os.listdir(folder))) or "nothing"
    except OSError:
        present = "nothing (the folder does not exist)"
    return "Entry point %s not found; %s holds: %s. Check the step's entry point and source folder.\n" % (
        entry, folder, present)


def write_usage(meta_dir, exit_code, started):
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    record = {
        "exit_code": exit_code,
        "max_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
        "cpu_time_s": round(usage.ru_utime + usage.ru_stime, 3),
        "started_at": started,
        "ended_at": time.time(),
    }
    make_folder(meta_dir)
    write_text(os.path.join(meta_dir, "usage.json"), json.dumps(record, sort_keys=True))


def note(log_fd, message):
    os.write(log_fd, (NOTE_PREFIX + message.rstrip("\n") + "\n").encode("utf-8", "replace"))


def read_json(path, default):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return default


def has_content(path):
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def write_text(path, text):
    try:
        make_folder(os.path.dirname(path))
        # The script may have left a link or a FIFO here: never follow it, never block on it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
    except OSError as exc:
        sys.stderr.write("rtest: could not write %s: %s\n" % (path, exc))


def make_folder(path):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        pass  # a mount rtest made, or not ours to create; the script will say if it needs it


if __name__ == "__main__":
    sys.exit(main(sys.argv))
