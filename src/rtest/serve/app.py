"""The HTTP API of `rtest serve` (FastAPI). Every route under /api and /metrics needs the token when one is set.

Browser defences (Host allowlist, same-origin state changes) are in rtest.serve.guard; what a submission may
name in rtest.serve.policy; uploads in rtest.serve.upload. Answers never show the service's own paths."""

from __future__ import annotations

import asyncio
import os
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import Field, ValidationError

from rtest.errors import RtestError
from rtest.serve import files
from rtest.serve.auth import bearer_checker, bearer_given, cookie_name
from rtest.serve.bundle import BundleError, load_bundle_spec
from rtest.serve.manager import RunManager, RunRequest
from rtest.serve.models import (
    Health,
    PathStat,
    RunChanges,
    RunDetail,
    RunPage,
    RunView,
    ServiceInfo,
    ServiceModel,
    SlotState,
    Submitted,
)
from rtest.serve.page import artifact_headers, page_response
from rtest.serve.policy import SubmissionRefused
from rtest.serve.registry import RUN_STATUSES
from rtest.serve.streams import follow_log, sse
from rtest.serve.upload import MAX_UPLOAD, UploadTooLarge, receive
from rtest.version import __version__

MAX_NUMBER = 1 << 53  # offsets and event ids beyond this are no one's: 400, never an overflow
CLIENT_HEADER = "x-rtest-client"  # a header no HTML form can set: uploads need it (or the bearer token)
WEB_STATIC = {"app.js": "text/javascript", "app.css": "text/css"}  # the web page's own files (serve/web/)
_SUBMIT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/RunRequest"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["request", "bundle"], "properties": {
        "request": {"type": "string", "description": "RunRequest as JSON; its spec travels in the bundle"},
        "bundle": {"type": "string", "format": "binary", "description": "tar.gz made by rtest.serve.bundle.pack"}}}},
}}}


class PruneRequest(ServiceModel):
    keep_runs: int | None = Field(default=None, ge=0, le=MAX_NUMBER)
    keep_days: float | None = Field(default=None, ge=0, le=100_000)


def create_app(manager: RunManager, *, token: str | None, server_id: str, metrics, bound: str = "127.0.0.1",
               port: int = 8080, allowed_hosts: tuple[str, ...] = (), allowed_origins: tuple[str, ...] = (),
               max_upload: int = MAX_UPLOAD) -> FastAPI:
    app = FastAPI(title="rtest serve", version=__version__,
                  description="Runs SageMaker pipelines' scripts in SageMaker-shaped containers, as a shared service.")
    cookie = cookie_name(port)
    api = APIRouter(prefix="/api", dependencies=[Depends(bearer_checker(token, cookie))])
    app.state.manager = manager
    _add_guards(app, manager, bound=bound, hosts=allowed_hosts, origins=allowed_origins)

    @app.get("/healthz", response_model=Health, tags=["service"])
    def healthz() -> Health:
        return Health(status="ok", version=__version__)

    @app.get("/metrics", tags=["service"], dependencies=[Depends(bearer_checker(token, cookie))],
             response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    @app.get("/runs/{run_id}", include_in_schema=False)  # a run's deep link
    def page(request: Request, run_id: str | None = None,
             token_given: str | None = Query(None, alias="token", max_length=512)) -> Response:
        return page_response(token, token_given, cookie, back=request.url.path)

    @api.get("/service", response_model=ServiceInfo, tags=["service"])
    def service_info() -> ServiceInfo:
        """For token holders: where the service keeps its runs (a client that can read its server-id file there
        shares the service's file system)."""
        return ServiceInfo(version=__version__, workdir=str(manager.workspace.root), server_id=server_id,
                           slots=manager.pool.size)

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
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            if not (bearer_given(request, token) or request.headers.get(CLIENT_HEADER)):
                raise HTTPException(403, f"An upload needs the bearer token or an {CLIENT_HEADER} header "
                                         "(a web form can send neither); use the rtest CLI.")
            run_request = await _receive_bundle(request, manager, run_id, max_upload)
        elif kind == "application/json":
            run_request = _parse_request(await _bounded_body(request))
            if run_request.bundle:
                raise HTTPException(400, "bundle is set but no bundle was uploaded; send multipart/form-data.")
        else:
            raise HTTPException(415, "A run request is application/json (or multipart/form-data with a bundle).")
        try:
            if run_request.spec is not None:
                from rtest.serve.manager import _user_spec

                manager.policy.check(_user_spec(run_request.spec), by_path=True)
            manager.submit(run_request, run_id)
        except SubmissionRefused as exc:
            _forget_upload(manager, run_id)
            raise HTTPException(403, str(exc)) from None
        except RtestError as exc:  # a malformed spec: the client's to fix
            _forget_upload(manager, run_id)
            raise HTTPException(400, str(exc)) from None
        return Submitted(id=run_id, url=f"/api/runs/{run_id}")

    @api.post("/runs/prune", tags=["runs"])
    def prune_runs(body: PruneRequest) -> dict:
        """Remove finished runs (registry rows, event logs, run folders) beyond the newest ``keep_runs`` or older
        than ``keep_days``; queued and running runs stay."""
        from rtest.serve.retention import prune

        if body.keep_runs is None and body.keep_days is None:
            raise HTTPException(400, "Say what to keep: keep_runs, keep_days or both.")
        return {"removed": prune(manager, keep_runs=body.keep_runs, keep_days=body.keep_days)}

    @api.get("/runs", response_model=RunPage, tags=["runs"])
    def list_runs(status: str | None = Query(None, description=f"one of {', '.join(RUN_STATUSES)}"),
                  limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=MAX_NUMBER),
                  pipeline: str | None = Query(None, max_length=500, description="only this pipeline's runs")
                  ) -> RunPage:
        if status is not None and status not in RUN_STATUSES:
            raise HTTPException(400, f"No run status '{status}'; use one of {', '.join(RUN_STATUSES)}.")
        runs, total = manager.registry.runs(status=status, limit=limit, offset=offset, pipeline=pipeline)
        counts = manager.registry.step_counts([run["id"] for run in runs])
        for run in runs:
            run["steps_done"], run["steps_total"] = counts.get(run["id"], (None, None))
        return RunPage(runs=[_redacted_run(manager, r) for r in runs], total=total, limit=limit, offset=offset,
                       pipelines=manager.registry.pipelines())

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
        run = _redacted_run(manager, _run_or_404(manager, run_id))
        return RunDetail(**run, steps=manager.registry.steps(run_id), queue_position=manager.queue_position(run_id))

    @api.get("/runs/{run_id}/events", tags=["runs"], response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}}})
    def events(run_id: str, request: Request, after: int = Query(0, ge=0, le=MAX_NUMBER)) -> StreamingResponse:
        _run_or_404(manager, run_id)
        resume = request.headers.get("last-event-id", "").strip()
        if resume and not (resume.isdigit() and len(resume) <= 15):
            raise HTTPException(400, "Last-Event-ID must be an event number the service sent.")
        start = int(resume) if resume else after
        redact = _redactor(manager)
        lines = (redact(line) async for line in sse(manager, run_id, start))
        return StreamingResponse(lines, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @api.get("/runs/{run_id}/steps/{node}/log", tags=["runs"], response_class=StreamingResponse,
             responses={200: {"content": {"text/plain": {}}}})
    async def step_log(run_id: str, node: str, offset: int = Query(0, ge=0, le=MAX_NUMBER),
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
        media, headers = artifact_headers(path)  # data, never active content on this origin
        size = os.fstat(fd).st_size
        return StreamingResponse(files.stream(fd), media_type=media, headers={**headers, "Content-Length": str(size)})

    @api.get("/runs/{run_id}/view", response_model=RunView, tags=["web page"])
    def view(run_id: str) -> RunView:
        from rtest.serve.view import render_view

        run = _run_or_404(manager, run_id)
        return render_view(run, manager.registry.steps(run_id), manager.events.all(run_id))

    @api.get("/fs/stat", response_model=PathStat, tags=["service"])
    def stat_path(path: str = Query(..., max_length=4096)) -> PathStat:
        """Whether the service sees ``path`` as the client does (size, mtime): may a run be submitted by path?

        Only paths under the service's --allow-path folders exist for this question (the rest cannot be
        submitted by path anyway)."""
        try:
            allowed = os.path.isabs(path) and manager.policy.may_read(Path(path))
            info = os.stat(path) if allowed else None
        except OSError:
            info = None
        return PathStat(exists=info is not None, size=info.st_size if info else None,
                        mtime_ns=info.st_mtime_ns if info else None)

    @api.get("/slots", response_model=SlotState, tags=["service"])
    def slots() -> SlotState:
        return SlotState(**manager.pool.snapshot())

    app.include_router(api)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI's documented override
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
        run = manager.registry.run(run_id)
        if run is None or run["status"] not in ("queued", "running"):
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


async def _bounded_body(request: Request, limit: int = 4 << 20) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"A run request is at most {limit} bytes; send files in a bundle.")
    return bytes(body)


async def _receive_bundle(request: Request, manager: RunManager, run_id: str, max_upload: int) -> RunRequest:
    """Stream the upload (counted as it arrives), unpack it in a worker into the run's submission folder, and
    check what its spec names against the policy before the run is recorded."""
    folder = manager.submission_dir(run_id)
    try:
        raw = await receive(request, folder, max_upload=max_upload)
        run_request = _parse_request(raw)
        manager.policy.check_code(load_bundle_spec(folder / "bundle"))
    except UploadTooLarge as exc:  # closing the connection stops the sender; otherwise the rest would be drained
        raise HTTPException(413, str(exc), headers={"Connection": "close"}) from None
    except SubmissionRefused as exc:
        _forget_upload(manager, run_id)
        raise HTTPException(403, str(exc)) from None
    except (BundleError, RtestError) as exc:
        _forget_upload(manager, run_id)
        raise HTTPException(400, str(exc)) from None
    except HTTPException:
        _forget_upload(manager, run_id)
        raise
    return run_request.model_copy(update={"bundle": True, "spec": None})


def _forget_upload(manager: RunManager, run_id: str) -> None:
    import shutil

    shutil.rmtree(manager.submission_dir(run_id), ignore_errors=True)


def _redactor(manager: RunManager):
    """Answers never show where the service keeps things: its workdir becomes <workdir>."""
    roots = sorted({str(manager.workspace.root), str(manager.workspace.root.resolve())}, key=len, reverse=True)

    def redact(text):
        for root in roots:
            text = text.replace(root, "<workdir>")
        return text

    return redact


def _redacted_run(manager: RunManager, run: dict) -> dict:
    return {**run, "message": _redactor(manager)(run["message"])} if run.get("message") else run


def _add_guards(app: FastAPI, manager: RunManager, *, bound: str, hosts: tuple[str, ...],
                origins: tuple[str, ...]) -> None:
    """Browser defences around every route, CORS only for configured origins, and errors without our paths."""
    import structlog
    from starlette.exceptions import HTTPException as FastAPIHTTPException

    from rtest.serve.guard import BrowserGuard

    redact = _redactor(manager)

    @app.exception_handler(FastAPIHTTPException)
    async def http_error(request: Request, exc: FastAPIHTTPException) -> JSONResponse:
        detail = redact(exc.detail) if isinstance(exc.detail, str) else exc.detail
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        structlog.get_logger("rtest.serve").error("request failed", path=request.url.path, exc_info=exc)
        return JSONResponse({"detail": "rtest serve hit an internal error; its log has the details."},
                            status_code=500)

    if origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", CLIENT_HEADER])
    app.add_middleware(BrowserGuard, bound=bound, hosts=hosts, origins=origins)

