"""The address policy: no connection to loopback, private, link-local, multicast, reserved or
unspecified addresses, judged on the address actually connected to, for every URL and redirect hop.

A hostile site (a TableServer on 127.0.0.2, which the tests allow) redirects to a service on
127.0.0.1 (which they do not) under every spelling of that address; the service counts the
connections it accepts and must see none.
"""
import ipaddress
import socket
import threading

import pytest

from facescrub import network
from facescrub.download import DownloadSettings, fetch, make_session
from facescrub.network import AddressPolicy, RefusedAddress, literal_address, non_public_kind
from hostile_servers import TableServer

HOSTILE_HOST = "127.0.0.2"
SETTINGS = DownloadSettings(connect_timeout=2.0, read_timeout=2.0, deadline=5.0, retries=0,
                            allowed_networks=(ipaddress.ip_network(f"{HOSTILE_HOST}/32"),))
BODY = b"\xff\xd8\xff" + b"an image from the allowed site"


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("10.1.2.3", "private"), ("172.16.0.1", "private"),
    ("192.168.1.1", "private"), ("169.254.169.254", "link-local"), ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"), ("0.0.0.0", "unspecified"), ("100.64.0.1", "non-global"), ("::1", "loopback"),
    ("::", "unspecified"), ("fe80::1", "link-local"), ("fc00::1", "private"), ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "link-local"), ("2002:7f00:1::", "loopback"),
    ("64:ff9b::a00:1", "private"), ("8.8.8.8", None), ("93.184.216.34", None), ("2606:4700::1111", None),
    ("::ffff:8.8.8.8", None)])
def test_non_public_addresses_are_named(address, kind):
    assert non_public_kind(address) == kind


@pytest.mark.parametrize("host, address", [("127.0.0.1", "127.0.0.1"), ("2130706433", "127.0.0.1"),
                                           ("0x7f000001", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
                                           ("127.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"),
                                           ("::ffff:127.0.0.1", "::ffff:127.0.0.1"), ("example.com", None),
                                           ("cafe.de", None), ("deadbeef", None)])
def test_literal_addresses_in_every_spelling(host, address):
    assert literal_address(host) == (None if address is None else ipaddress.ip_address(address))


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "0x7f.1", "::ffff:127.0.0.1", "localhost",
                                  "LOCALHOST.", "db.localhost", "10.0.0.1"])
def test_literal_and_local_hosts_are_refused_without_dns(host, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: pytest.fail("DNS was asked"))
    with pytest.raises(RefusedAddress, match="allow-private-addresses"):
        AddressPolicy().check_url_host(host)
    AddressPolicy(network.EVERYWHERE).check_url_host(host)


@pytest.fixture
def target():
    """The service that must never be reached, on 127.0.0.1."""
    with TableServer({"/": ("body", b"secret")}) as server:
        yield server


def hostile(target, locations):
    """A TableServer on HOSTILE_HOST whose /<i> redirects to locations[i]; /ok answers BODY."""
    table = {f"/{i}": ("redirect", location) for i, location in enumerate(locations)}
    return TableServer({**table, "/ok": ("body", BODY)}, host=HOSTILE_HOST)


def spellings(target):
    """The target's URL with its address spelled every way a resolver accepts."""
    return [f"http://{host}:{target.port}/" for host in
            ("127.0.0.1", "localhost", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "[::ffff:127.0.0.1]",
             "[::ffff:7f00:1]", "vm")]


def test_list_urls_to_local_addresses_are_refused_before_connecting(target):
    session = make_session(settings=SETTINGS)
    for url in spellings(target):
        outcome, body = fetch(session, url, SETTINGS)
        assert (outcome.status, body) == ("refused_address", b""), url
    assert target.connections == 0


def test_every_redirect_hop_is_checked_before_connecting(target):
    locations = spellings(target) + ["/ok"]
    with hostile(target, locations) as site:
        session = make_session(settings=SETTINGS)
        statuses = [fetch(session, f"{site.url}/{i}", SETTINGS)[0].status for i in range(len(locations))]
        assert statuses == ["refused_address"] * (len(locations) - 1) + ["fetched"]
        assert fetch(session, f"{site.url}/ok", SETTINGS)[0].status == "fetched"
    assert target.connections == 0 and site.connections > 0


def test_without_the_opt_in_the_allowed_site_itself_is_refused(target):
    with hostile(target, []) as site:
        settings = DownloadSettings(retries=0)
        assert fetch(make_session(settings=settings), f"{site.url}/ok", settings)[0].status == "refused_address"
    assert site.connections == 0


def fake_dns(monkeypatch, answers):
    """Make network.getaddrinfo answer host -> the next address in answers[host] (a list); return the
    list of the hosts looked up among those."""
    asked = []
    real = network.getaddrinfo

    def lookup(host, port):
        if host not in answers:
            return real(host, port)
        asked.append(host)
        return real(answers[host].pop(0), port)
    monkeypatch.setattr(network, "getaddrinfo", lookup)
    return asked


def test_a_name_resolving_to_a_private_address_is_refused_at_connect(target, monkeypatch):
    asked = fake_dns(monkeypatch, {"intranet.example": ["127.0.0.1"]})
    with hostile(target, [f"http://intranet.example:{target.port}/"]) as site:
        outcome, _ = fetch(make_session(settings=SETTINGS), f"{site.url}/0", SETTINGS)
    assert outcome.status == "refused_address" and asked == ["intranet.example"] and target.connections == 0


def test_dns_rebinding_cannot_switch_the_address_after_the_check(target, monkeypatch):
    """The name answers the allowed address once, then 127.0.0.1: the connection goes where the check looked."""
    with hostile(target, []) as site:
        asked = fake_dns(monkeypatch, {"rebind.example": [HOSTILE_HOST, "127.0.0.1", "127.0.0.1"]})
        outcome, body = fetch(make_session(settings=SETTINGS), f"http://rebind.example:{site.port}/ok", SETTINGS)
    assert (outcome.status, body) == ("fetched", BODY) and asked == ["rebind.example"] and target.connections == 0


def test_a_slow_dns_answer_counts_against_the_deadline(monkeypatch):
    released = threading.Event()

    def hang(host, port):
        released.wait()
        return OSError("released")
    monkeypatch.setattr(network, "getaddrinfo", hang)
    settings = DownloadSettings(connect_timeout=0.2, read_timeout=0.2, deadline=0.5, retries=0)
    try:
        outcome, _ = fetch(make_session(settings=settings), "http://slow-dns.example/a.jpg", settings)
    finally:
        released.set()
    assert outcome.status == "timeout"
