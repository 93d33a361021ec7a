"""The sagemaker-inference toolkit's handler contract, written for rtest (stdlib; numpy when the image has it).

What the toolkit does (sagemaker_inference.transformer / default_inference_handler), as rtest
reproduces it:
- a handler function the module lacks is replaced by the toolkit's default: model_fn and
  predict_fn raise NotImplementedError (a framework container may bring its own; the base
  toolkit does not), input_fn decodes JSON / CSV / NPY into a numpy array, output_fn encodes
  the prediction as JSON / CSV / NPY and returns (body, accept);
- transform_fn(model, body, content_type, accept) replaces the three, and may not be combined
  with any of them (ValueError);
- a function may take one more argument than the toolkit passes: the request context (None here);
- JSON and CSV bodies are decoded to str before input_fn; others stay bytes;
- an accept of */* or none means SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT (default application/json);
- output_fn may return the body alone (its content type is then the accept) or (body, content_type).
"""

import csv
import inspect
import io
import json
import os
import traceback

JSON, CSV, NPY = "application/json", "text/csv", "application/x-npy"
UTF8_TYPES = (JSON, CSV)
FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn")


class HandlerError(Exception):
    """One handler function raised: which, and what."""

    def __init__(self, function, cause):
        Exception.__init__(self, "%s raised %r" % (function, cause))
        self.function, self.cause = function, cause


class UnsupportedFormatError(ValueError):
    def __init__(self, content_type):
        ValueError.__init__(self, "Content type %s is not supported by this framework; implement input_fn to "
                                  "deserialize the request or output_fn to serialize the response" % content_type)


def default_model_fn(model_dir):
    raise NotImplementedError("Please provide a model_fn implementation (the toolkit has no default).")


def default_predict_fn(data, model):
    raise NotImplementedError("Please provide a predict_fn implementation (the toolkit has no default).")


def default_input_fn(input_data, content_type):
    np = _numpy()
    if content_type == JSON:
        data = json.loads(input_data)
        return np.array(data) if np else data
    if content_type == CSV:
        if np:
            return np.genfromtxt(io.StringIO(input_data), delimiter=",")
        return [[_number(cell) for cell in row] for row in csv.reader(io.StringIO(input_data)) if row]
    if content_type == NPY and np:
        return np.load(io.BytesIO(input_data), allow_pickle=True)
    raise UnsupportedFormatError(content_type)


def default_output_fn(prediction, accept):
    np = _numpy()
    if accept == JSON:
        return json.dumps(prediction, default=lambda value: value.tolist() if hasattr(value, "tolist") else
                          json.JSONEncoder().default(value)), accept
    if accept == CSV:
        stream = io.StringIO()
        if np:
            np.savetxt(stream, prediction, delimiter=",", fmt="%s")
        else:
            rows = prediction if isinstance(prediction, (list, tuple)) else [prediction]
            csv.writer(stream, lineterminator="\n").writerows(r if isinstance(r, (list, tuple)) else [r] for r in rows)
        return stream.getvalue(), accept
    if accept == NPY and np:
        stream = io.BytesIO()
        np.save(stream, prediction)
        return stream.getvalue(), accept
    raise UnsupportedFormatError(accept)


DEFAULTS = {"model_fn": default_model_fn, "input_fn": default_input_fn, "predict_fn": default_predict_fn,
            "output_fn": default_output_fn}


def resolve_functions(module):
    """name -> (callable, the handler's own?), as the toolkit's _validate_user_module_and_set_functions."""
    own = dict((name, getattr(module, name, None)) for name in FUNCTIONS + ("transform_fn",))
    if own["transform_fn"] and (own["input_fn"] or own["predict_fn"] or own["output_fn"]):
        raise ValueError("Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, "
                         "and/or output_fn implementation")
    functions = dict((name, (own[name] or DEFAULTS[name], own[name] is not None)) for name in FUNCTIONS)
    if own["transform_fn"]:
        functions["transform_fn"] = (own["transform_fn"], True)
    return functions


def transform(functions, model, body, content_type, accept):
    """One request: (answer body, answer content type). A raising handler function -> HandlerError."""
    if content_type in UTF8_TYPES and isinstance(body, bytes):
        body = body.decode("utf-8")
    accept = default_accept() if accept in (None, "", "*/*") else accept
    if "transform_fn" in functions:
        result = _step("transform_fn", functions, model, body, content_type, accept)
    else:
        data = _step("input_fn", functions, body, content_type)
        prediction = _step("predict_fn", functions, data, model)
        result = _step("output_fn", functions, prediction, accept)
    if isinstance(result, tuple):
        return result[0], result[1] if len(result) > 1 else accept
    return result, accept


def _step(name, functions, *args):
    try:
        return call(functions[name][0], *args)
    except Exception as exc:  # whatever the handler raised is the finding
        raise HandlerError(name, exc) from exc


def call(function, *args):
    """The toolkit's _run_handler_function: one more parameter than given means it takes the context."""
    try:
        count = len(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        count = len(args)
    if count == len(args) + 1:
        return function(*(args + (None,)))
    if count != len(args):
        raise TypeError("%s takes %d arguments but %d were given." % (function.__name__, count, len(args)))
    return function(*args)


def default_accept():
    return os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or JSON


def exception_summary(exc, program):
    """``ValueError: bad type (inference_handler.py line 41)``: the exception line and the handler's last frame."""
    text = ("%s: %s" % (type(exc).__name__, exc)) if str(exc) else type(exc).__name__
    text = " ".join(text.split())[:300]
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if os.path.basename(f.filename) == program] or frames[-1:]
    if mine:
        text += " (%s line %d)" % (os.path.basename(mine[-1].filename), mine[-1].lineno)
    traceback.print_exception(type(exc), exc, exc.__traceback__)  # the whole story goes to the step's log
    return text


def _numpy():
    try:
        import numpy
        return numpy
    except ImportError:
        return None


def _number(cell):
    try:
        return float(cell)
    except ValueError:
        return cell
