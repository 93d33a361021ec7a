"""A run handed to a service: submit (paths, or a bundle when we do not share its disk), follow its
events, cancel it on Ctrl-C, download its reports into the local workdir. The CLI and the factory call it,
with the same request model the service reads (rtest.options.RunRequest)."""

from __future__ import annotations

import getpass
import socket
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtest.options import RunRequest
from rtest.plan.userspec import UserSpec
from rtest.report.json_report import read_report_json
from rtest.run.model import RunReport
from rtest.serve.client import ServiceClient
from rtest.workspace import Workspace

END = "run_ended"


@dataclass
class RemoteOutcome:
    run_id: str
    status: str
    exit_code: int
    message: str | None
    report: RunReport | None
    run_dir: Path  # the local copy of the run's reports


def submitter() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:  # noqa: BLE001 - no user name in a bare container: still submit
        return "unknown"


def run_remote(client: ServiceClient, *, spec: UserSpec, workdir: Path, request: RunRequest | None = None,
               junit: Path | None = None, upload: bool | None = None,
               on_event: Callable[[dict], None] = lambda record: None,
               cancel: threading.Event | None = None) -> RemoteOutcome:
    """Submit ``request`` (every run flag; its ``spec`` is filled here: ``spec``, merged as for a local run) and
    follow to the end (``cancel`` set -> the remote run is cancelled), then download the reports."""
    cancel = cancel or threading.Event()
    request = (request or RunRequest()).model_copy(update={"submitter": submitter()})
    with tempfile.TemporaryDirectory(prefix="rtest-bundle-") as scratch:
        bundle = None
        probe = Path(spec.pipeline.config) if spec.pipeline.config else None
        if not request.example and (upload if upload is not None else not client.shares_file_system(probe)):
            from rtest.serve.bundle import pack

            bundle = pack(spec, Path(scratch) / "bundle.tar.gz", skip=(Path(workdir),))
        else:
            request = request.model_copy(update={"spec": spec.model_dump(mode="json")})
        run_id = client.submit(request.model_dump(mode="json"), bundle)
    end = _follow(client, run_id, on_event, cancel)
    run_dir = Workspace(workdir).run_dir(run_id)
    report = _download_reports(client, run_id, run_dir, junit)
    return RemoteOutcome(run_id=run_id, status=end.get("status", "interrupted"), exit_code=end.get("exit_code", 130),
                         message=end.get("message"), report=report, run_dir=run_dir)


def _follow(client: ServiceClient, run_id: str, on_event: Callable[[dict], None],
            cancel: threading.Event) -> dict[str, Any]:
    """Events on a thread of their own, so Ctrl-C (which only sets ``cancel``) is acted on at once."""
    box: dict[str, Any] = {}

    def reader() -> None:
        try:
            for record in client.events(run_id):
                if record.get("type") == END:
                    box["end"] = record
                else:
                    on_event(record)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=reader, name=f"rtest-follow-{run_id}", daemon=True)
    thread.start()
    asked = False
    while thread.is_alive():
        thread.join(0.1)
        if cancel.is_set() and not asked:
            asked = True
            client.cancel(run_id)
    if "error" in box:
        raise box["error"]
    return box.get("end", {})


def _download_reports(client: ServiceClient, run_id: str, run_dir: Path, junit: Path | None) -> RunReport | None:
    got = client.download(run_id, "report.json", run_dir / "report.json")
    client.download(run_id, "report.html", run_dir / "report.html")
    client.download(run_id, "junit.xml", junit or run_dir / "junit.xml")
    return read_report_json(got) if got else None
