"""rtest's inference check, run by bootstrap.py in the serving framework's image: standard library only.

Hosting's layout first: the packaged model.tar.gz unpacked into /opt/ml/model, the handler under
code/ (copied there from the handler's source folder when the archive lacks it, as the SDK's repack
would do), SAGEMAKER_PROGRAM naming it. Then the sagemaker-inference toolkit's contract, called
directly (no model server, no network): model_fn(model_dir) once, per request
input_fn(body, content_type) -> predict_fn(data, model) -> output_fn(prediction, accept), or
transform_fn(model, body, content_type, accept); the toolkit's defaults where the handler has none
(toolkit_defaults.py). Every payload sample of a configured content type is sent once per
configured accept type; each answer must have that type, parse, and carry the output variables.

Writes the per-sample results as JSON (the kind's config names the file) and exits 1 when anything
failed, with one sentence per failure in /opt/ml/output/failure.
"""

import importlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time

import toolkit_defaults as defaults
from answer_check import check_answer

CONFIG = "/opt/rtest/inference/config/inferencecheck.json"
MAX_SAMPLES = 200
SAMPLE_TYPES = {".csv": "text/csv", ".json": "application/json", ".jsonl": "application/jsonlines",
                ".npy": "application/x-npy", ".parquet": "application/x-parquet"}


def main():
    env = os.environ
    config = read_json(env.get("RTEST_INFERENCE_CONFIG", CONFIG))
    model_dir = config.get("model_dir", "/opt/ml/model")
    ml = env.get("RTEST_OPT_ML", "/opt/ml").rstrip("/")
    results_path = config.get("results", ml + "/output/inference_check.json")
    program = env.get("SAGEMAKER_PROGRAM") or os.path.basename(env.get("RTEST_ENTRY_POINT", ""))
    results = {"handler": program, "model_loaded": False, "samples": [], "failures": [], "notes": []}
    try:
        run_check(config, env, model_dir, program, results)
    finally:
        write_json(results_path, results)
        if results["failures"]:
            write_failure(ml + "/output/failure", results["failures"])
    return 1 if results["failures"] else 0


def run_check(config, env, model_dir, program, results):
    fail = results["failures"].append
    try:
        archive = unpack_model(config.get("model_inputs", []), model_dir)
        results["model_archive"] = archive
        results["handler_from"] = place_handler(model_dir, program, env.get("RTEST_ENTRY_POINT", ""))
    except (OSError, ValueError, tarfile.TarError) as exc:
        fail("the packaged model could not be laid out in %s: %s" % (model_dir, exc))
        return
    log("model laid out in %s from %s; handler code/%s (%s)" % (model_dir, archive, program, results["handler_from"]))
    try:
        functions = handler_functions(os.path.join(model_dir, "code"), program)
    except Exception as exc:  # the handler's own import failing is the finding, whatever it raised
        fail("importing %s raised %s" % (program, defaults.exception_summary(exc, program)))
        return
    results["functions"] = dict((name, "handler" if own else "toolkit default")
                                for name, (fn, own) in functions.items())
    started = time.perf_counter()
    try:
        model = defaults.call(functions["model_fn"][0], model_dir)
    except Exception as exc:
        fail("model_fn raised %s" % defaults.exception_summary(exc, program))
        return
    results["model_loaded"] = True
    results["load_s"] = round(time.perf_counter() - started, 3)
    log("model_fn loaded the model in %.3f s" % results["load_s"])
    send_samples(config, env, functions, model, program, results)


def send_samples(config, env, functions, model, program, results):
    content_types = split_types(env.get("RTEST_INFERENCE_CONTENT_TYPES"))
    accepts = split_types(env.get("RTEST_INFERENCE_ACCEPT_TYPES")) or [defaults.default_accept()]
    variables = json.loads(env.get("RTEST_INFERENCE_OUTPUTS") or "[]")
    samples = payload_samples(config.get("payload_inputs", []))
    if not samples:
        results["failures"].append("no payload sample: the payload input holds no sample file (%s)"
                                   % ", ".join(sorted(SAMPLE_TYPES)))
        return
    for name, path, content_type in samples:
        if content_types and content_type not in content_types:
            results["samples"].append({"file": name, "content_type": content_type, "accept": None,
                                       "status": "not-sent", "latency_ms": None,
                                       "failure": "%s is not a configured content type (%s)"
                                                  % (content_type, ", ".join(content_types))})
            continue
        with open(path, "rb") as handle:
            body = handle.read()
        for accept in accepts:
            results["samples"].append(one_request(functions, model, program, name, body, content_type,
                                                  accept, variables))
    sent = [s for s in results["samples"] if s["status"] != "not-sent"]
    results["failures"].extend(s["failure"] for s in sent if s["failure"])
    if not sent:
        results["failures"].append("no payload sample has a configured content type (%s)" % ", ".join(content_types))
    missing = [t for t in content_types if t not in set(s["content_type"] for s in sent)]
    if missing:
        results["notes"].append("no payload sample of content type %s" % ", ".join(missing))


def one_request(functions, model, program, name, body, content_type, accept, variables):
    record = {"file": name, "content_type": content_type, "accept": accept, "status": "failed",
              "latency_ms": None, "failure": None}
    where = "sample %s (%s -> %s)" % (name, content_type, accept)
    started = time.perf_counter()
    try:
        answer, answer_type = defaults.transform(functions, model, body, content_type, accept)
    except defaults.HandlerError as exc:
        record["failure"] = "%s: %s raised %s" % (where, exc.function, defaults.exception_summary(exc.cause, program))
        log(record["failure"])
        return record
    record["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
    problem = check_answer(answer, answer_type, accept, variables)
    record["status"] = "failed" if problem else "answered"
    record["failure"] = "%s: %s" % (where, problem) if problem else None
    log("%s: %s in %.1f ms" % (where, problem or "answered", record["latency_ms"]))
    return record


# ---- hosting's layout ----------------------------------------------------------------------


def unpack_model(model_inputs, model_dir):
    """model.tar.gz (or the only archive) of the model input, unpacked as hosting does; else its files copied."""
    archives, folders = [], []
    for root in model_inputs:
        for folder, _, files in os.walk(root):
            archives += [os.path.join(folder, f) for f in sorted(files) if f.endswith((".tar.gz", ".tgz"))]
        folders.append(root)
    archives.sort(key=lambda p: (os.path.basename(p) != "model.tar.gz", p))
    if archives:
        safe_extract(archives[0], model_dir)
        return archives[0]
    for root in folders:
        if os.path.isdir(root) and os.listdir(root):
            copy_tree(root, model_dir)
            return root
    raise ValueError("the model input (%s) holds no model.tar.gz and no files" % (", ".join(model_inputs) or "none"))


def safe_extract(archive, target):
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            parts = member.name.replace("\\", "/").split("/")
            if member.name.startswith("/") or ".." in parts:
                raise ValueError("%s holds a member outside the archive: %s" % (os.path.basename(archive), member.name))
            if not (member.isfile() or member.isdir()):
                raise ValueError("%s holds a link or device, which hosting would not serve: %s"
                                 % (os.path.basename(archive), member.name))
        tar.extractall(target, members=members)


def place_handler(model_dir, program, source_handler):
    """Hosting imports code/<program>; the SDK's repack puts the entry point there when the archive lacks it."""
    target = os.path.join(model_dir, "code", program)
    if os.path.isfile(target):
        return "archive"
    if not source_handler or not os.path.isfile(source_handler):
        raise ValueError("the archive has no code/%s and the handler's source folder neither" % program)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    copy_tree(os.path.dirname(source_handler), os.path.dirname(target))
    return "source folder (the archive has no code/%s)" % program


def copy_tree(source, target):
    for folder, dirs, files in os.walk(source):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        relative = os.path.relpath(folder, source)
        os.makedirs(os.path.join(target, relative), exist_ok=True)
        for name in files:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                shutil.copyfile(path, os.path.join(target, relative, name))


def handler_functions(code_dir, program):
    """name -> (callable, the handler's own?): the module's functions, else the toolkit's defaults."""
    sys.path.insert(0, code_dir)  # as the serving toolkit imports the user module from SAGEMAKER_SUBMIT_DIRECTORY
    module = importlib.import_module(os.path.splitext(program)[0])
    return defaults.resolve_functions(module)


def payload_samples(payload_inputs):
    """(name, path, content type) of each sample file: loose files first, else what the archives hold."""
    loose = sample_files(payload_inputs)
    if loose:
        return loose[:MAX_SAMPLES]
    unpacked = tempfile.mkdtemp(prefix="rtest-payloads-")
    for folder, _, files in walk_all(payload_inputs):
        for name in files:
            if name.endswith((".tar.gz", ".tgz")):
                safe_extract(os.path.join(folder, name), os.path.join(unpacked, name.split(".")[0]))
    return sample_files([unpacked])[:MAX_SAMPLES]


def sample_files(roots):
    found = []
    for folder, _, files in walk_all(roots):
        for name in sorted(files):
            content_type = SAMPLE_TYPES.get(os.path.splitext(name)[1].lower())
            if content_type:
                found.append((name, os.path.join(folder, name), content_type))
    return found


def walk_all(roots):
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            yield folder, dirs, files


# ---- small helpers ---------------------------------------------------------------------------


def split_types(text):
    return [t.strip().lower() for t in (text or "").split(",") if t.strip()]


def log(message):
    sys.stdout.write("[inference-check] %s\n" % message)
    sys.stdout.flush()


def read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(value, handle, indent=1, sort_keys=True, default=str)


def write_failure(path, failures):
    # The first sentence first: a step's failure reason is read from this file's start.
    more = " (and %d more below)" % (len(failures) - 1) if len(failures) > 1 else ""
    text = "inference check: %s%s\n%s\n" % (failures[0], more, "\n".join(failures[1:]))
    with open(path, "w") as handle:
        handle.write(text)


if __name__ == "__main__":
    sys.exit(main())
