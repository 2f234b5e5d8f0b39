"""The client's network address, as the access log, the sign-in lockout (django-axes, AXES_CLIENT_IP_CALLABLE) and
the portal's wrong-code limit all see it.

Behind settings.TRUSTED_PROXY_COUNT reverse proxies, each of which appends the address it was reached from to
X-Forwarded-For (nginx: `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`), the client is the entry that
many places from the right: whatever a client writes into the header itself stays to the left of it. With 0 (the
default) the header is ignored, since without a proxy anyone can send one.
May import: nothing of ours (bottom layer).
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def _valid(raw: str) -> str | None:
    try:
        return ipaddress.ip_address(raw.strip()).compressed
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The client's address: the TRUSTED_PROXY_COUNT-th entry from the right of X-Forwarded-For, else REMOTE_ADDR;
    None when that is not an IP address. A header with fewer entries than trusted proxies did not come through all
    of them, so it is not believed."""
    if request is None:
        return None
    meta = request.META
    hops = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if hops > 0:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= hops and (address := _valid(forwarded[-hops])):
            return address
    return _valid(meta.get("REMOTE_ADDR") or "")
