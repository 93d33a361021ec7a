"""Who may talk to the service: loopback needs nothing, any other address needs a bearer token."""

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


def check_bind(host: str, token: str | None) -> None:
    """Refuse, before binding, to listen on a non-loopback address without a token."""
    if not is_loopback(host) and not token:
        raise UnsafeBindError(f"rtest serve refuses to listen on {host} without a token: anyone who reaches it "
                              f"could run containers on this machine; pass --token or set {TOKEN_ENV}, "
                              "or use --host 127.0.0.1.")


def bearer_checker(token: str | None):
    """A FastAPI dependency: with a token set, every API call needs ``Authorization: Bearer <token>``."""

    def check(request: Request) -> None:
        if not token:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(status_code=401, detail="Missing or wrong token: send Authorization: Bearer <token>.",
                                headers={"WWW-Authenticate": "Bearer"})

    return check
