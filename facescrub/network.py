"""Which addresses the downloader may connect to, and a requests session that enforces it.

A list line or a redirect can point anywhere: at 127.0.0.1, at the router on 192.168.0.1, at a
cloud metadata service on 169.254.169.254. The downloader connects only to public unicast
addresses unless the user opts in (AddressPolicy.allowed, the CLI's --allow-private-addresses).

The check is made on the address that is actually connected to: CheckedConnection resolves
the host once (in a thread, so that a slow DNS server counts against the connect timeout),
refuses it if any address is not allowed, and connects to the checked address itself; the
host name stays in the Host header and in TLS (SNI and certificate). A name that answers
one address to a check and another to the connect (DNS rebinding) therefore cannot slip
through. Before that, a URL whose host is an address literal or `localhost` is refused
without any connection (literal_address understands http://2130706433/, http://0x7f.1/,
http://[::ffff:127.0.0.1]/).

With a proxy, the proxy resolves the URLs' host names, so what is checked is: the proxy's
own address (when its connection is made, and once before any request by check_proxy) and
each URL's host when it is an address literal or `localhost`.
"""
import ipaddress
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
import urllib3
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

USER_AGENT = "tinynet-facescrub/0.1 (course dataset downloader; python-requests)"
EVERYWHERE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NUMERIC_HOST = re.compile(r"[0-9a-fx.]+")
KINDS = ("unspecified", "loopback", "link_local", "multicast", "reserved", "private")


class RefusedAddress(Exception):
    """A host that is, or resolves to, an address the policy does not allow. Not an OSError on
    purpose: it passes through urllib3 and requests unwrapped, so it cannot be taken for a
    connection error and retried."""


class ProxyFailure(Exception):
    """The proxy is malformed, refused by the policy, or unreachable: an error of the whole run, not
    of a URL. Raised by check_proxy and by a connection to the proxy; passes through requests unwrapped."""


def embedded_ipv4(address):
    """The IPv4 addresses an IPv6 address carries by 6to4, Teredo or NAT64, which is where a
    packet to it may end up; [] for an IPv4 address or a plain IPv6 one."""
    if address.version == 4:
        return []
    carried = [address.sixtofour, *(address.teredo or ())]
    if address in NAT64:
        carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [ipv4 for ipv4 in carried if ipv4 is not None]


def non_public_kind(address):
    """None for a public unicast address, else why not: 'loopback', 'private', 'link-local',
    'multicast', 'reserved', 'unspecified' or 'non-global' (e.g. 100.64.0.0/10). An IPv4-mapped
    address is judged as its IPv4 address (::ffff:127.0.0.1 is loopback); other IPv6 addresses
    by themselves and by any IPv4 address they carry (embedded_ipv4)."""
    address = ipaddress.ip_address(address)
    if address.version == 6 and address.ipv4_mapped:
        return non_public_kind(address.ipv4_mapped)
    for ipv4 in embedded_ipv4(address):
        if kind := non_public_kind(ipv4):
            return kind
    kind = next((name for name in KINDS if getattr(address, f"is_{name}")), None)
    if kind is None and not address.is_global:
        kind = "non-global"
    return kind and kind.replace("_", "-")


def literal_address(host):
    """The IP address a URL's host names without DNS, or None for a host name.

    Besides dotted quads and IPv6 this understands the forms the C library's inet_aton
    accepts and a resolver would turn into an address: 2130706433, 0x7f000001, 0177.0.0.1, 127.1.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if NUMERIC_HOST.fullmatch(host.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Public unicast addresses are allowed; others only inside `allowed` (ip_network objects)."""

    allowed: tuple = ()

    def check(self, host, address):
        """RefusedAddress naming host and address unless the policy allows connecting to address."""
        address = ipaddress.ip_address(address)
        kind = non_public_kind(address)
        if kind and not any(address.version == net.version and address in net for net in self.allowed):
            named = host if host == str(address) else f"{host} ({address})"
            raise RefusedAddress(f"refused to connect to {named}: a {kind} address "
                                 f"(--allow-private-addresses allows it, e.g. for a local mirror)")

    def check_url_host(self, host):
        """Refuse, without DNS, a host that is an address literal or a name for this machine."""
        address = literal_address(host)
        if address is not None:
            self.check(host, address)
        elif host.lower().rstrip(".") == "localhost" or host.lower().rstrip(".").endswith(".localhost"):
            self.check(host, "127.0.0.1")

    def resolve(self, host, port, timeout):
        """The addresses host resolves to, each checked: [(family, address)]. The lookup runs in a
        daemon thread so that it gives up after timeout seconds (TimeoutError); socket.gaierror
        when the name does not resolve; RefusedAddress if any address is not allowed."""
        answer = []
        lookup = threading.Thread(target=lambda: answer.append(getaddrinfo(host, port)), daemon=True)
        lookup.start()
        lookup.join(timeout)
        if not answer:
            raise TimeoutError(f"no DNS answer for {host} within {timeout:.3g} s")
        if isinstance(answer[0], OSError):
            raise answer[0]
        addresses = list(dict.fromkeys((family, sockaddr[0]) for family, sockaddr in answer[0]))
        for _, address in addresses:
            self.check(host, address)
        return addresses


def getaddrinfo(host, port):
    """[(family, sockaddr)] of host's TCP addresses, or the OSError the lookup raised."""
    try:
        return [(family, sockaddr) for family, _, _, _, sockaddr in socket.getaddrinfo(host, port,
                                                                                       type=socket.SOCK_STREAM)]
    except OSError as error:
        return error


def connect(addresses, port, ends, source_address=None, socket_options=()):
    """A TCP socket connected to the first of addresses ([(family, address)]) that answers before
    time.monotonic() reaches `ends` (TimeoutError after that)."""
    error = OSError(f"no address to connect to on port {port}")
    for family, address in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(max(ends - time.monotonic(), 1e-3))
            if source_address:
                sock.bind(source_address)
            sock.connect((address, port))
            return sock
        except OSError as failure:
            sock.close()
            error = failure
    raise error


class CheckedConnection:
    """Mixed into urllib3's connections: connects only to addresses self.policy allows (see module docstring).

    DNS and the TCP connect share one budget, the connection's timeout (the per-URL connect timeout).
    """

    def __init__(self, *args, policy, **kwargs):
        super().__init__(*args, **kwargs)
        self.policy = policy

    def _new_conn(self):
        budget = self.timeout if isinstance(self.timeout, (int, float)) and self.timeout > 0 else 10.0
        ends = time.monotonic() + budget
        try:
            addresses = self.policy.resolve(self._dns_host, self.port, budget)
            sock = connect(addresses, self.port, ends, self.source_address, self.socket_options)
        except (OSError, RefusedAddress) as error:
            if self.proxy is not None:
                raise ProxyFailure(f"cannot connect to the proxy {self.host}:{self.port} ({error}); nothing was "
                                   f"recorded for the URLs not fetched yet: run again when it answers") from error
            if isinstance(error, socket.gaierror):
                raise NameResolutionError(self.host, self, error) from error
            if isinstance(error, TimeoutError):
                raise ConnectTimeoutError(self, f"connection to {self.host} timed out ({budget:.3g} s, DNS "
                                                f"included)") from error
            if isinstance(error, OSError):
                raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error
            raise
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock


class CheckedHTTPConnection(CheckedConnection, urllib3.connection.HTTPConnection):
    """An HTTP connection that connects only where its policy allows."""


class CheckedHTTPSConnection(CheckedConnection, urllib3.connection.HTTPSConnection):
    """An HTTPS connection that connects only where its policy allows (TLS still names the host)."""


CHECKED_CONNECTIONS = {"http": CheckedHTTPConnection, "https": CheckedHTTPSConnection}


class CheckedAdapter(requests.adapters.HTTPAdapter):
    """A requests adapter whose connection pools (direct or to a proxy) make CheckedConnections."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def checked(self, pool):
        """The pool, set to make CheckedConnections with this adapter's policy."""
        pool.ConnectionCls = CHECKED_CONNECTIONS[pool.scheme]
        pool.conn_kw["policy"] = self.policy
        return pool

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        return self.checked(super().get_connection_with_tls_context(request, verify, proxies, cert))


def check_proxy(proxy, policy, timeout):
    """ProxyFailure unless proxy is an http(s)://host:port URL whose address the policy allows and
    that accepts a TCP connection within timeout seconds, DNS included (one attempt)."""
    try:
        parts = urlsplit(proxy)
        host, port = parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError as error:
        raise ProxyFailure(f"--proxy {proxy!r} is not a URL ({error}); expected http://host:port") from None
    if parts.scheme not in ("http", "https") or not host or parts.path not in ("", "/") or parts.query:
        raise ProxyFailure(f"--proxy {proxy!r} is not a proxy URL; expected http://host:port")
    try:
        policy.check_url_host(host)
        ends = time.monotonic() + timeout
        connect(policy.resolve(host, port, timeout), port, ends).close()
    except RefusedAddress as error:
        raise ProxyFailure(f"--proxy {proxy!r}: {error}") from None
    except OSError as error:
        raise ProxyFailure(f"--proxy {proxy!r} does not accept connections ({error}); check the host and "
                           f"port, or leave out --proxy") from None


def checked_session(proxy=None, policy=AddressPolicy(), connect_timeout=5.0):
    """A requests Session with our User-Agent that connects only where policy allows; every
    request through `proxy` if given, checked first by check_proxy. Environment proxy settings
    (HTTP_PROXY, ...) are ignored: a proxy is used only when named, and then it is checked.
    download.fetch_once follows redirects itself (allow_redirects=False) to check each hop first."""
    if proxy:
        check_proxy(proxy, policy, connect_timeout)
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.trust_env = False
    session.proxies = {"http": proxy, "https": proxy} if proxy else {}
    for scheme in ("http://", "https://"):
        session.mount(scheme, CheckedAdapter(policy))
    return session
