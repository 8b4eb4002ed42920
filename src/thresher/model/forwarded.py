"""**The** rule for the address a request comes from behind proxies: `X-Forwarded-For` is believed
only from a peer in `trusted_proxies`, and only as far as the chain of trusted proxies goes.

Each proxy appends the address it got the request from, so the header reads `client, proxy1, proxy2`
and the peer is the last proxy. Walking from the right, every hop a trusted proxy appended is
believed; the first address that is not a trusted proxy is the client. A header from an untrusted
peer (anybody may send one) is ignored, so nobody outside the listed proxies can choose the address
the audit log records or the per-address lockout counts. Pure: no I/O.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Sequence

Network = IPv4Network | IPv6Network


def networks(items: Sequence[str]) -> tuple[Network, ...]:
    """`10.0.0.0/8`, `192.168.1.5`, `::1` as networks (a bare address is a network of one)."""
    return tuple(ip_network(item.strip(), strict=False) for item in items)


def trusted(address: str | None, proxies: Sequence[Network]) -> bool:
    try:
        parsed = ip_address((address or "").strip())
    except ValueError:
        return False
    return any(parsed.version == net.version and parsed in net for net in proxies)


def client_address(peer: str | None, forwarded_for: str | None, proxies: Sequence[Network]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy that says whom it forwards."""
    if not peer:
        return "unknown"
    address = peer
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    while hops and trusted(address, proxies):
        hop = hops.pop()
        if not trusted(hop, proxies) and not _is_address(hop):
            break  # a trusted proxy appends addresses: what is not one was written by somebody else
        address = hop
    return address


def _is_address(value: str) -> bool:
    try:
        ip_address(value)
    except ValueError:
        return False
    return True
