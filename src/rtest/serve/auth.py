"""Who may talk to the service: whoever holds its token (by default one is generated, also on loopback).

Programs send ``Authorization: Bearer <token>``; the web page trades the token once for an HttpOnly,
SameSite=Strict cookie (so report links and event streams carry it, and page scripts never see it).
``--no-token`` exists for loopback only."""

from __future__ import annotations

import ipaddress
import secrets

from fastapi import HTTPException, Request

from rtest.errors import RtestError

TOKEN_ENV = "RTEST_TOKEN"


class UnsafeBindError(RtestError):
    """The service would listen beyond this machine without a token."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def cookie_name(port: int) -> str:
    """Per port: cookies ignore ports, and two services on one machine must not share (or overwrite) one."""
    return f"rtest-token-{port}"


def check_bind(host: str, token: str | None) -> None:
    """Refuse, before binding, to listen on a non-loopback address without a token."""
    if not is_loopback(host) and not token:
        raise UnsafeBindError(f"rtest serve refuses to listen on {host} without a token: anyone who reaches it "
                              f"could run containers on this machine; pass --token or set {TOKEN_ENV}, "
                              "or use --host 127.0.0.1.")


def same_token(given: str | None, token: str) -> bool:
    return given is not None and given != "" and secrets.compare_digest(given.encode(), token.encode())


def bearer_given(request: Request, token: str | None) -> bool:
    """Whether the request carries the token in its Authorization header (a form or a plain link cannot)."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return token is not None and token != "" and scheme.lower() == "bearer" and same_token(given.strip(), token)


def bearer_checker(token: str | None, cookie: str = ""):
    """A FastAPI dependency: with a token set, every API call needs it, as a bearer header or the page's cookie."""

    def check(request: Request) -> None:
        if not token or bearer_given(request, token) or (cookie and same_token(request.cookies.get(cookie), token)):
            return
        raise HTTPException(status_code=401, detail="Missing or wrong token: send Authorization: Bearer <token>, "
                            "or open the page at the URL rtest serve printed.", headers={"WWW-Authenticate": "Bearer"})

    return check
