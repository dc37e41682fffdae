"""SSRF guard for base URLs that users (not administrators) may set.

A URL is refused when its host resolves to any loopback, private, link-local, multicast,
reserved or unspecified address. Checked when the URL is saved and again before each call
(`address_check_async`), so changing a DNS record after saving does not open a hole. Redirects
are never followed by the HTTP seam (see providers/http.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from django.utils.translation import gettext as _


class UnsafeURL(ValueError):
    pass


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(_("Enter an http or https URL."))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL(_("The URL has an invalid port.")) from exc
    return parts.hostname, port


def _is_forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _check(infos) -> None:
    if not infos:
        raise UnsafeURL(_("The host name does not resolve."))
    for info in infos:
        if _is_forbidden(info[4][0]):
            raise UnsafeURL(
                _("This address is on a private or local network, which is not allowed.")
            )


def address_check(url: str) -> None:
    """Raise UnsafeURL unless every address the URL's host resolves to is public."""
    host, port = _host_port(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(_("The host name does not resolve.")) from exc
    _check(infos)


async def address_check_async(url: str) -> None:
    host, port = _host_port(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(_("The host name does not resolve.")) from exc
    _check(infos)


def trusted_default(url: str, default: str) -> bool:
    """True for an adapter's built-in base URL naming a public host (api.openai.com…): the
    check guards URLs that users choose, and a vendor default is not one (Ollama's
    localhost default is, so it is still checked)."""
    if not default or url.rstrip("/") != default.rstrip("/"):
        return False
    host = urlsplit(default).hostname or ""
    try:
        ipaddress.ip_address(host)
        return False
    except ValueError:
        return host != "localhost" and not host.endswith(".localhost")
