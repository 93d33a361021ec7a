"""A bundle upload, received and unpacked without letting it near the event loop's time or the disk's end.

The multipart body is parsed as it arrives (python-multipart's streaming parser) and counted as it
arrives: a body without Content-Length stops at the limit instead of being spooled whole. The bundle
part goes straight to ``<submission>/upload.tar.gz``; the ``request`` part (the RunRequest JSON) is kept
in memory, bounded. Unpacking then runs in a worker process with CPU-time and memory limits
(``python -m rtest.serve.unpack_worker``), so a hostile archive costs that worker, never the service.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path
from typing import Any, BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header

from rtest.serve.bundle import BundleError
from rtest.serve.unpack_worker import UNPACK_CPU_S, UNPACK_MEMORY

MAX_UPLOAD = 512 << 20
MAX_REQUEST_FIELD = 1 << 20
UNPACK_WALL_S = 180.0


class UploadTooLarge(BundleError):
    """The body went past the upload limit (answered 413)."""


class _Parts:
    """python-multipart callbacks: which part we are in, where its bytes go."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.out: BinaryIO | None = None
        self.request = bytearray()
        self.name: str | None = None
        self.seen: set[str] = set()
        self._field, self._value = bytearray(), bytearray()
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> Any:  # python-multipart's MultipartCallbacks: a TypedDict of these
        return {"on_part_begin": self._begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done, "on_part_data": self._data, "on_part_end": self._end}

    def _begin(self) -> None:
        self._headers, self.name = {}, None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field, self._value = bytearray(), bytearray()

    def _headers_done(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self.name = params.get(b"name", b"").decode(errors="replace")
        if self.name in self.seen or self.name not in ("request", "bundle"):
            raise BundleError("A bundle upload has exactly two parts, 'request' and 'bundle', once each.")
        self.seen.add(self.name)
        if self.name == "bundle":
            self.out = self.archive.open("wb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.name == "bundle" and self.out is not None:  # opened when the bundle part's headers ended
            self.out.write(data[start:end])
        else:
            self.request += data[start:end]
            if len(self.request) > MAX_REQUEST_FIELD:
                raise BundleError(f"The 'request' part is larger than {MAX_REQUEST_FIELD} bytes.")

    def _end(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None


async def receive(request, folder: Path, *, max_upload: int = MAX_UPLOAD) -> str:
    """Stream the multipart body into ``folder``, unpack it into ``folder/bundle`` in a worker; returns the
    'request' part. Raises BundleError (UploadTooLarge past the limit); ``folder`` is removed on any failure."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_upload:
        raise UploadTooLarge(f"The upload is larger than {max_upload} bytes.")
    _, params = parse_options_header(request.headers.get("content-type", ""))
    if not params.get(b"boundary"):
        raise BundleError("A multipart upload needs a boundary in its Content-Type.")
    folder.mkdir(parents=True, exist_ok=True)
    parts = _Parts(folder / "upload.tar.gz")
    try:
        parser = MultipartParser(params[b"boundary"], parts.callbacks())
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_upload:  # counted as it arrives: a chunked body stops here
                raise UploadTooLarge(f"The upload is larger than {max_upload} bytes.")
            parser.write(chunk)
        parser.finalize()
        if parts.seen != {"request", "bundle"}:
            raise BundleError("A bundle upload needs a 'request' part and a 'bundle' file part.")
        await unpack_in_worker(parts.archive, folder / "bundle")
    except BaseException as exc:
        if parts.out is not None:
            parts.out.close()
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, ValueError) and not isinstance(exc, BundleError):  # the multipart parser's own
            raise BundleError(f"The multipart body is malformed: {exc}.") from None
        raise
    finally:
        (folder / "upload.tar.gz").unlink(missing_ok=True)
    return parts.request.decode(errors="replace") or "{}"


async def unpack_in_worker(archive: Path, target: Path) -> None:
    """``bundle.unpack`` in a child process with CPU-time and memory limits; its BundleError comes back as ours."""
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtest.serve.unpack_worker", str(archive), str(target),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(worker.communicate(), UNPACK_WALL_S)
    except asyncio.TimeoutError:
        worker.kill()
        await worker.wait()
        err = b""
    if worker.returncode == 0 and target.is_dir():
        return
    shutil.rmtree(target.with_name(target.name + ".partial"), ignore_errors=True)
    message = err.decode(errors="replace").strip().splitlines()
    if worker.returncode == 3 and message:
        raise BundleError(message[-1][:2000])
    raise BundleError(f"The bundle could not be unpacked within the service's limits ({UNPACK_CPU_S} s of CPU, "
                      f"{UNPACK_MEMORY >> 20} MiB of memory); leave out what the run does not need.")
