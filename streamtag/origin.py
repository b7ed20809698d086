"""Which HTTP and websocket requests come from this machine's own pages: the Host and Origin checks.

Any page the user visits can open ``ws://127.0.0.1:8765``; the browser then sends that page's ``Origin``, and a
DNS-rebinding page sends its own name as ``Host``. Both must name this machine (or the address the feed was
explicitly bound to, or a name the user allowed), compared whole: a prefix test would let
``127.0.0.1.evil.example`` through. ``Origin: null`` (a sandboxed frame, a file:// page) is a browser page too,
and names nothing. Programs other than browsers send no ``Origin``.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

ALL_INTERFACES = frozenset({"0.0.0.0", "::", ""})
# Headers read as one value: two of them are ambiguous (which one would a proxy, or the browser, have meant?).
_SINGLE_HEADERS = ("Host", "Origin", "Upgrade")


def is_loopback_address(name: str) -> bool:
    """A literal loopback address (127.0.0.0/8, ::1); a name such as ``127.0.0.1.evil.example`` is not one."""
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class OwnNames:
    """The names of this feed: loopback, ``localhost``, the bound address and the names the user allows."""

    def __init__(self, *, bound_host: str, allowed: tuple[str, ...] = ()) -> None:
        self.bound_host = bound_host
        names = {"localhost", bound_host, *allowed}
        self._names = frozenset(name.lower() for name in names if name not in ALL_INTERFACES)

    def names(self, host: str | None) -> bool:
        """Whether ``host`` (a hostname as urlsplit gives it: lower case, no brackets) names this feed."""
        return host is not None and (host in self._names or is_loopback_address(host))

    def refusal(self, headers: Any) -> tuple[int, str] | None:
        """Why a request must be refused, as (HTTP status, text), else None."""
        for name in _SINGLE_HEADERS:
            if len(headers.get_all(name)) > 1:
                return 400, f"more than one {name} header\n"
        host_header = headers.get("Host")
        origin = headers.get("Origin")
        try:
            host = None if host_header is None else urlsplit("//" + host_header).hostname
            origin_host = None if origin is None else urlsplit(origin).hostname
        except ValueError:  # what urlsplit says of an unclosed IPv6 bracket, e.g. "Host: [zz"
            return 400, "the Host or Origin header is not an address\n"
        all_interfaces = self.bound_host in ALL_INTERFACES  # the user chose to be reachable by any name
        if host_header is not None and not all_interfaces and not self.names(host):
            return 403, f"host {host!r} is not this feed's\n"
        if origin is not None:
            same_origin = origin_host is not None and origin_host == host  # our own pages, by whatever name
            if not (same_origin or self.names(origin_host)):
                return 403, f"pages from {origin} may not use this feed\n"
        return None
