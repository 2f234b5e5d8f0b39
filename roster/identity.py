"""The national student number (全国学籍号, issue 19 item 1): one person's key across schools and years.

It usually embeds the national ID number (G + 18 characters), so it is never stored, shown or logged as typed: the
roster keeps a keyed hash (HMAC-SHA256 with settings.STUDENT_ID_KEY, else a key derived from SECRET_KEY) to match on,
and its last four characters to tell two records apart on a review page. Matching needs only equality.
May import: roster only.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from django.conf import settings

_NATIONAL_ID = re.compile(r"^[A-Z0-9]{8,32}$")
TAIL = 4


def normalize_national_id(value: str) -> str:
    """Upper case, spaces and dashes removed: 'g 5104 0220 1203 0512 34' and 'G510402201203051234' are one number."""
    return re.sub(r"[\s\-]", "", str(value or "")).upper()


def is_national_id(value: str) -> bool:
    return bool(_NATIONAL_ID.match(value))


def _key() -> bytes:
    key = settings.STUDENT_ID_KEY or ("student-id:" + settings.SECRET_KEY)
    return key.encode()


def national_id_digest(value: str) -> str:
    """The stored, matchable form of a (normalized) national student number; "" for none."""
    value = normalize_national_id(value)
    if not value:
        return ""
    return hmac.new(_key(), value.encode(), hashlib.sha256).hexdigest()


def national_id_tail(value: str) -> str:
    return normalize_national_id(value)[-TAIL:]


def mask_national_id(tail: str) -> str:
    """How pages show a stored number: ••••1234 (the rest is not kept)."""
    return f"••••{tail}" if tail else ""
