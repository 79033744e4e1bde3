"""Which IP a request came from, trusting only the header the platform sets.

Any client can send `X-Forwarded-For` or `X-Client-IP` itself; only a front end that
overwrites (or appends to) the header makes it trustworthy, so the header is a setting
(`CLIENT_IP_HEADER`) chosen for the platform, never guessed:

- `X-Client-IP`: set by the App Service front end that every Azure Functions app sits
  behind; it overwrites whatever the client sent.
- `X-Azure-SocketIP`: set by Azure Front Door to the address of the TCP connection it
  received (`X-Azure-ClientIP` may come from a client-sent header, so it is not used).
  Behind Front Door the App Service front end's `X-Client-IP` names Front Door, not the
  shopper, and the app must accept traffic only from its Front Door (`X-Azure-FDID`).
- `X-Forwarded-For`: only for a proxy of the shop's own that appends the peer address;
  the right-most entry (the one that proxy added) is used, never the client's.
- `socket`: the TCP peer (a host with nothing in front, such as `cloudcart serve`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

SOCKET = "socket"
FORWARDED_FOR = "x-forwarded-for"


def _parse(value: str) -> str | None:
    text = value.strip().strip('"')
    if text.startswith("["):  # [v6]:port
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def client_ip(headers: Mapping[str, str], peer: str | None, header: str) -> str | None:
    """The caller's IP from `header` (see the module docs), or None when the platform did
    not say (an IP that cannot be trusted is worth less than none)."""
    name = header.strip()
    if not name or name.lower() == SOCKET:
        return _parse(peer) if peer else None
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get(name.lower())
    if not value:
        return None
    if name.lower() == FORWARDED_FOR:
        value = value.split(",")[-1]
    return _parse(value)


def ip_bucket(ip: str) -> str:
    """What the per-IP rules count: the address itself for IPv4, its /64 for IPv6 (one
    household or phone gets a whole /64, so single v6 addresses are cheap to rotate)."""
    address = ipaddress.ip_address(ip)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
