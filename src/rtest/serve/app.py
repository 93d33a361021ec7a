"""The HTTP API of `rtest serve` (FastAPI). Every route under /api and /metrics needs the token when one is set."""

from __future__ import annotations

import asyncio
import os
import shutil
from importlib import resources

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from rtest.errors import RtestError
from rtest.serve import files
from rtest.serve.auth import bearer_checker
from rtest.serve.bundle import BundleError, unpack
from rtest.serve.manager import RunManager, RunRequest
from rtest.serve.models import Health, PathStat, RunChanges, RunDetail, RunPage, RunView, SlotState, Submitted
from rtest.serve.registry import RUN_STATUSES
from rtest.serve.streams import follow_log, sse
from rtest.version import __version__

MAX_UPLOAD = 512 << 20
WEB_STATIC = {"app.js": "text/javascript", "app.css": "text/css"}  # the web page's own files (serve/web/)
_SUBMIT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/RunRequest"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["request", "bundle"], "properties": {
        "request": {"type": "string", "description": "RunRequest as JSON; its spec travels in the bundle"},
        "bundle": {"type": "string", "format": "binary", "description": "tar.gz made by rtest.serve.bundle.pack"}}}},
}}}


def create_app(manager: RunManager, *, token: str | None, server_id: str, metrics) -> FastAPI:
    app = FastAPI(title="rtest serve", version=__version__,
                  description="Runs SageMaker pipelines' scripts in SageMaker-shaped containers, as a shared service.")
    api = APIRouter(prefix="/api", dependencies=[Depends(bearer_checker(token))])
    app.state.manager = manager

    @app.get("/healthz", response_model=Health, tags=["service"])
    def healthz() -> Health:
        return Health(status="ok", version=__version__, workdir=str(manager.workspace.root), server_id=server_id,
                      slots=manager.pool.size)

    @app.get("/metrics", tags=["service"], dependencies=[Depends(bearer_checker(token))],
             response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    @app.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)  # a run's deep link
    def page(run_id: str | None = None) -> HTMLResponse:
        return HTMLResponse(resources.files("rtest.serve").joinpath("web/index.html").read_text(encoding="utf-8"))

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        """The page's script and style, as files of their own (no inline code: a strict CSP allows them)."""
        if name not in WEB_STATIC:
            raise HTTPException(404, f"No static file {name!r}.")
        text = resources.files("rtest.serve").joinpath(f"web/{name}").read_text(encoding="utf-8")
        return Response(text, media_type=WEB_STATIC[name], headers={"Cache-Control": "no-cache"})

    @api.post("/runs", status_code=202, response_model=Submitted, tags=["runs"], openapi_extra=_SUBMIT_BODY)
    async def submit(request: Request) -> Submitted:
        run_id = manager.new_run_id()
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            run_request = await _receive_bundle(request, manager, run_id)
        else:
            run_request = _parse_request(await request.body())
            if run_request.bundle:
                raise HTTPException(400, "bundle is set but no bundle was uploaded; send multipart/form-data.")
        try:
            manager.submit(run_request, run_id)
        except RtestError as exc:  # a malformed spec: the client's to fix
            raise HTTPException(400, str(exc)) from None
        return Submitted(id=run_id, url=f"/api/runs/{run_id}")

    @api.get("/runs", response_model=RunPage, tags=["runs"])
    def list_runs(status: str | None = Query(None, description=f"one of {', '.join(RUN_STATUSES)}"),
                  limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0),
                  pipeline: str | None = Query(None, description="only this pipeline's runs")) -> RunPage:
        if status is not None and status not in RUN_STATUSES:
            raise HTTPException(400, f"No run status '{status}'; use one of {', '.join(RUN_STATUSES)}.")
        runs, total = manager.registry.runs(status=status, limit=limit, offset=offset, pipeline=pipeline)
        counts = manager.registry.step_counts([run["id"] for run in runs])
        for run in runs:
            run["steps_done"], run["steps_total"] = counts.get(run["id"], (None, None))
        return RunPage(runs=runs, total=total, limit=limit, offset=offset, pipelines=manager.registry.pipelines())

    @api.get("/runs/{run_id}/changes", response_model=RunChanges, tags=["runs"])
    def changes(run_id: str) -> RunChanges:
        """What changed since the previous run of the same pipeline: steps newly failing or fixed, durations,
        scripts whose digest differs, values (env vars, arguments, hyperparameters, image) that differ."""
        from rtest.serve.changes import compare, read_fingerprint

        run = _run_or_404(manager, run_id)
        before = manager.registry.previous_run(run_id)
        return RunChanges(**compare(
            run, manager.registry.steps(run_id), before, manager.registry.steps(before["id"]) if before else [],
            read_fingerprint(manager.workspace.run_dir(run_id)),
            read_fingerprint(manager.workspace.run_dir(before["id"])) if before else {}))

    @api.get("/runs/{run_id}", response_model=RunDetail, tags=["runs"])
    def show_run(run_id: str) -> RunDetail:
        run = _run_or_404(manager, run_id)
        return RunDetail(**run, steps=manager.registry.steps(run_id), queue_position=manager.queue_position(run_id))

    @api.get("/runs/{run_id}/events", tags=["runs"], response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}}})
    def events(run_id: str, request: Request, after: int = Query(0, ge=0)) -> StreamingResponse:
        _run_or_404(manager, run_id)
        resume = request.headers.get("last-event-id", "")
        start = int(resume) if resume.isdigit() else after
        return StreamingResponse(sse(manager, run_id, start), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @api.get("/runs/{run_id}/steps/{node}/log", tags=["runs"], response_class=StreamingResponse,
             responses={200: {"content": {"text/plain": {}}}})
    async def step_log(run_id: str, node: str, offset: int = Query(0, ge=0),
                       tail: int | None = Query(None, ge=1, le=10_000), follow: bool = False,
                       limit: int = Query(1 << 20, ge=1, le=16 << 20)) -> Response:
        _run_or_404(manager, run_id)
        if not await _has_step(manager, run_id, node, wait_s=30.0 if follow else 0.0):
            raise HTTPException(404, f"Run {run_id} has no step '{node}'.")
        try:
            fd = files.open_under(manager.workspace.run_dir(run_id), f"{node}/log.txt")
        except files.NotServable:
            fd = None
        if fd is not None and tail:
            offset = files.tail_offset(fd, tail)
        if follow:
            return StreamingResponse(follow_log(manager, run_id, node, fd, offset), media_type="text/plain")
        data = b""
        if fd is not None:
            data = files.read_range(fd, offset, limit)
            os.close(fd)
        return Response(data, media_type="text/plain", headers={"X-Log-Next-Offset": str(offset + len(data))})

    @api.post("/runs/{run_id}/cancel", status_code=202, tags=["runs"])
    def cancel(run_id: str) -> dict:
        run = _run_or_404(manager, run_id)
        if not manager.cancel(run_id):
            raise HTTPException(409, f"Run {run_id} is {run['status']}; only a queued or running run can be cancelled.")
        return {"id": run_id, "cancelling": True}

    @api.get("/runs/{run_id}/artifacts", tags=["runs"])
    @api.get("/runs/{run_id}/artifacts/{path:path}", tags=["runs"])
    def artifact(run_id: str, path: str = "") -> Response:
        _run_or_404(manager, run_id)
        try:
            fd = files.open_under(manager.workspace.run_dir(run_id), path)
        except files.NotServable as exc:
            raise HTTPException(404, f"No file {path!r} in run {run_id}: {exc}.") from None
        if files.is_dir(fd):
            return JSONResponse({"path": path, "entries": files.listing(fd)})
        media = "text/html" if path.endswith(".html") else "application/octet-stream"
        size = os.fstat(fd).st_size
        return StreamingResponse(files.stream(fd), media_type=media, headers={"Content-Length": str(size)})

    @api.get("/runs/{run_id}/view", response_model=RunView, tags=["web page"])
    def view(run_id: str) -> RunView:
        from rtest.serve.view import render_view

        run = _run_or_404(manager, run_id)
        return render_view(run, manager.registry.steps(run_id), manager.events.all(run_id))

    @api.get("/fs/stat", response_model=PathStat, tags=["service"])
    def stat_path(path: str) -> PathStat:
        """Whether the service sees ``path`` as the client does (size, mtime): may a run be submitted by path?

        Token holders can already name any server path in a run request, so this tells them nothing new."""
        try:
            info = os.stat(path) if os.path.isabs(path) else None
        except OSError:
            info = None
        return PathStat(exists=info is not None, size=info.st_size if info else None,
                        mtime_ns=info.st_mtime_ns if info else None)

    @api.get("/slots", response_model=SlotState, tags=["service"])
    def slots() -> SlotState:
        return SlotState(**manager.pool.snapshot())

    app.include_router(api)
    app.openapi = lambda: _openapi(app)
    return app


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema, plus RunRequest (the submit route reads its body itself: JSON or a bundle upload)."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        found = RunRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(found.pop("$defs", {}))
        components["RunRequest"] = found
        app.openapi_schema = schema
    return app.openapi_schema


def _run_or_404(manager: RunManager, run_id: str) -> dict:
    run = manager.registry.run(run_id)
    if run is None:
        raise HTTPException(404, f"No run {run_id}.")
    return run


async def _has_step(manager: RunManager, run_id: str, node: str, wait_s: float) -> bool:
    """Whether the run has that step; a follower may come before the plan is made, so it may wait for it."""
    for _ in range(int(wait_s / 0.2) + 1):
        steps = manager.registry.steps(run_id)
        if steps:
            return node in {s["node"] for s in steps}
        if manager.registry.run(run_id)["status"] not in ("queued", "running"):
            return False
        await asyncio.sleep(0.2)
    return False


def _parse_request(raw: bytes | str) -> RunRequest:
    try:
        return RunRequest.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise HTTPException(400, f"The run request is invalid at {where}: {first['msg']}.") from None


async def _receive_bundle(request: Request, manager: RunManager, run_id: str) -> RunRequest:
    """Spool the upload (bounded), unpack it safely into the run's submission folder."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_UPLOAD:
        raise HTTPException(400, f"The bundle is larger than {MAX_UPLOAD} bytes.")
    form = await request.form(max_files=1, max_fields=2)
    upload, raw = form.get("bundle"), form.get("request")
    if upload is None or isinstance(upload, str):
        raise HTTPException(400, "A multipart submission needs a 'bundle' file part.")
    run_request = _parse_request(raw if isinstance(raw, str) else "{}")
    folder = manager.submission_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "upload.tar.gz"
    try:
        copied = 0
        with archive.open("wb") as spooled:
            while chunk := await upload.read(1 << 20):
                copied += len(chunk)
                if copied > MAX_UPLOAD:
                    raise BundleError(f"The bundle is larger than {MAX_UPLOAD} bytes.")
                spooled.write(chunk)
        unpack(archive, folder / "bundle")
    except BundleError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise HTTPException(400, str(exc)) from None
    finally:
        archive.unlink(missing_ok=True)
    return run_request.model_copy(update={"bundle": True, "spec": None})

