"""Which addresses our outgoing calls may reach: a service URL must lead to a public address,
unless the operator allows it (HMS_REFUSE_PRIVATE_URLS, HMS_PRIVATE_URL_ALLOW).

Private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback (127/8, ::1), link-local
(169.254/16, where clouds serve their metadata, fe80::/10) and every other address that is not
globally routable are refused, so a service URL cannot turn the orchestrator into a way into
the internal network. Checked when a service is saved in the admin or loaded from a file (the
host resolved there and then; 2130706433 and 0177.0.0.1 are 127.0.0.1), and on every
connection (runtime/outbound.py: the address actually connected to, so a name that resolves
differently later gains nothing).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def refusal(ip: str, port: int) -> str | None:
    """Why connecting to `ip`:`port` is refused, or None when it may be reached."""
    if not settings.HMS_REFUSE_PRIVATE_URLS:
        return None
    address = ipaddress.ip_address(ip.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_global or _allowed(address, port):
        return None
    return (
        f"{address} is {_kind(address)} address, not a public address; service URLs must "
        f"lead to public addresses unless HMS_PRIVATE_URL_ALLOW lists it (e.g. {address}:{port})"
    )


def url_refusal(url: str) -> str | None:
    """Why a service URL is refused: its host, as a literal address in any spelling or as a
    name resolved now, leads to a refused address. None when allowed, or when the name does
    not resolve here (every connection is checked again when it is made)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None  # a malformed port: the URL rules report it
    for ip in _addresses(parts.hostname, port):
        if why := refusal(ip, port):
            return why
    return None


def _addresses(host: str, port: int) -> list[str]:
    if literal := _literal(host):
        return [literal]
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({info[4][0] for info in found})


def _literal(host: str) -> str | None:
    """The address a host names by itself: 10.0.0.1, ::1, and the old IPv4 spellings the C
    library also accepts (2130706433, 0177.0.0.1, 0x7f.1)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def _allowed(address: IPAddress, port: int) -> bool:
    return any(_matches(entry.strip(), address, port) for entry in settings.HMS_PRIVATE_URL_ALLOW)


def _matches(entry: str, address: IPAddress, port: int) -> bool:
    """An allow-list entry: an address or network, optionally with a port: 127.0.0.1:9001,
    10.20.0.0/16, [::1]:9001, ::1."""
    wanted_port = None
    if entry.startswith("["):
        entry, _, rest = entry[1:].partition("]")
        wanted_port = rest.removeprefix(":") or None
    elif entry.count(":") == 1:
        entry, wanted_port = entry.split(":")
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False  # a malformed entry allows nothing
    return address in network and (wanted_port is None or str(port) == wanted_port)


def _kind(address: IPAddress) -> str:
    if address.is_loopback:
        return "a loopback"
    if address.is_link_local:
        return "a link-local"
    if address.is_private:
        return "a private"
    return "a reserved"
