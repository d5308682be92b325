"""Keep callback URLs from reaching the service's own network (SSRF).

A callback URL is checked when the job is submitted (resolve the host: every address must be
public) and again when each delivery connects: the socket's real peer address is checked after
connecting, so a DNS answer that changes between the check and the request (rebinding) cannot
smuggle a private address through. Operators open holes with STT_WEBHOOK_ALLOWED_HOSTS, a list
of host names and/or CIDR networks.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from shared.errors import ErrorCode, SttError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """Which non-public destinations the operator allows (nothing by default)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_entries(cls, entries: list[str]) -> UrlPolicy:
        """Entries that parse as an address or CIDR are networks; the rest are host names."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in (e.strip() for e in entries if e.strip()):
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def address_refusal(self, address: str) -> str | None:
        """Why ``address`` may not be called, or None when it may."""
        ip = _unwrap(ipaddress.ip_address(address.split("%", 1)[0]))
        if any(ip in net for net in self.networks):
            return None
        return _non_public_reason(ip)


def _unwrap(ip: IPAddress) -> IPAddress:
    """IPv4 hidden inside IPv6 (mapped, 6to4, Teredo) is judged as the IPv4 address it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            return inner
    return ip


def _non_public_reason(ip: IPAddress) -> str | None:
    checks = (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved or ip.is_unspecified),
        ("non-global", not ip.is_global),
    )
    return next((f"a {name} address ({ip})" for name, hit in checks if hit), None)


def _refused(message: str) -> SttError:
    return SttError(
        ErrorCode.CALLBACK_URL_NOT_ALLOWED,
        f"callback_url not allowed: {message} (see STT_WEBHOOK_ALLOWED_HOSTS)",
    )


def check_url(url: str, policy: UrlPolicy) -> None:
    """Refuse (SttError callback_url_not_allowed) a URL whose host is not public.

    Raises OSError when the host does not resolve: at submission that is a refusal too, at
    delivery time it is a transient failure worth retrying.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refused("only http(s) URLs with a host name are accepted")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise _refused("the port is not valid") from exc
    if policy.host_allowed(parts.hostname):
        return
    infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    for info in infos:
        reason = policy.address_refusal(str(info[4][0]))
        if reason is not None:
            raise _refused(f"{parts.hostname} resolves to {reason}")


def _check_peer(sock: socket.socket, host: str, policy: UrlPolicy) -> None:
    if policy.host_allowed(host):
        return
    reason = policy.address_refusal(str(sock.getpeername()[0]))
    if reason is not None:
        sock.close()
        raise _refused(f"{host} connected to {reason}")


def _pool_classes(policy: UrlPolicy) -> dict[str, type[HTTPConnectionPool]]:
    """Connection pools whose connections check the peer address right after connecting."""

    class CheckedHTTP(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            _check_peer(sock, self.host, policy)
            return sock

    class CheckedHTTPS(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            _check_peer(sock, self.host, policy)
            return sock

    class HTTPPool(HTTPConnectionPool):
        ConnectionCls = CheckedHTTP

    class HTTPSPool(HTTPSConnectionPool):
        ConnectionCls = CheckedHTTPS

    return {"http": HTTPPool, "https": HTTPSPool}


class _CheckedAdapter(HTTPAdapter):
    def __init__(self, policy: UrlPolicy) -> None:
        self._classes = _pool_classes(policy)
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._classes


def safe_session(policy: UrlPolicy) -> requests.Session:
    """A requests session for callbacks: peer-checked, no proxies or .netrc from the environment.

    A refused peer raises SttError(callback_url_not_allowed) out of ``session.post``.
    """
    session = requests.Session()
    session.trust_env = False
    adapter = _CheckedAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
