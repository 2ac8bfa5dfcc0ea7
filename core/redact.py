"""Keep camera credentials out of logs, metrics, API output and error messages."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact_url(text: str) -> str:
    """Replace ``user:pass@`` in every URL of ``text`` with ``***@``."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)
