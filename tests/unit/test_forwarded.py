"""The rule for a request's address behind proxies (`model/forwarded.py`): `X-Forwarded-For` only
from trusted proxies, believed only as far as the chain of trusted proxies goes."""

from __future__ import annotations

from thresher.model.forwarded import client_address, networks, trusted

PROXIES = networks(["10.0.0.0/24", "192.168.1.5", "::1"])


def test_the_header_of_an_untrusted_peer_is_ignored() -> None:
    assert client_address("203.0.113.7", "1.2.3.4", PROXIES) == "203.0.113.7"
    assert client_address("203.0.113.7", None, PROXIES) == "203.0.113.7"
    assert client_address("10.0.0.9", None, ()) == "10.0.0.9"  # no proxies listed: never believed
    assert client_address("10.0.0.9", "1.2.3.4", ()) == "10.0.0.9"
    assert client_address(None, "1.2.3.4", PROXIES) == "unknown"


def test_a_trusted_proxy_names_the_client_and_a_chain_of_them_is_followed() -> None:
    assert client_address("10.0.0.9", "198.51.100.2", PROXIES) == "198.51.100.2"
    assert client_address("10.0.0.9", "198.51.100.2, 192.168.1.5", PROXIES) == "198.51.100.2"
    assert client_address("::1", "2001:db8::5", PROXIES) == "2001:db8::5"


def test_what_the_client_wrote_itself_is_not_believed() -> None:
    # the client sent "X-Forwarded-For: 6.6.6.6"; the trusted proxy appended the client's real address
    assert client_address("10.0.0.9", "6.6.6.6, 198.51.100.2", PROXIES) == "198.51.100.2"
    assert client_address("10.0.0.9", "6.6.6.6,   10.0.0.3", PROXIES) == "6.6.6.6"  # via two proxies
    assert client_address("10.0.0.9", "not-an-address, 10.0.0.3", PROXIES) == "10.0.0.3"


def test_trusted_matches_addresses_and_networks_only() -> None:
    assert trusted("10.0.0.200", PROXIES) and trusted("192.168.1.5", PROXIES)
    assert not trusted("192.168.1.6", PROXIES) and not trusted("garbage", PROXIES) and not trusted(None, PROXIES)
