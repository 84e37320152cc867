# -*- test-case-name: tests.stratum.test_account -*-
"""
Miner account names and password options.

The account string decides who is paid for a share and becomes a Redis key,
so it is parsed exactly as the seed does (ref §4.2) and anything else is
refused.  The password is not a secret (the pool has no authentication); it
only carries the ``d=N`` fixed-difficulty option, clamped to the pool's bounds
(the seed let it escape them, ref §12.18).
"""

import math
import re

_SEPARATORS = re.compile(r"[.:\-_]")
_NAME = re.compile(r"[A-Za-z0-9]{1,64}\Z")
_WHITESPACE = re.compile(r"\s+")


def parse_account(text):
    """
    Return ``(user, worker)`` for an account string such as ``"Alice.rig1"``.

    All whitespace is removed, the rest split on any of ``. : - _``; the user
    is the text before the first separator and the worker the next non-empty
    part (further parts are ignored), defaulting to the user.  Each must be 1..64 ASCII letters or digits; both
    are lower-cased.  Raises ``ValueError`` naming the problem.
    """
    if not isinstance(text, str):
        raise ValueError("account is not a string")
    # The seed splits with strtok(): the user is everything before the first
    # separator, and empty tokens after it are skipped ("a..b" is a/b).
    parts = _SEPARATORS.split(_WHITESPACE.sub("", text))
    user = parts[0]
    worker = next((part for part in parts[1:] if part), user)
    if not _NAME.match(user):
        raise ValueError(f"invalid user name {user[:80]!r}")
    if not _NAME.match(worker):
        raise ValueError(f"invalid worker name {worker[:80]!r}")
    return user.lower(), worker.lower()


def parse_password_difficulty(password, diff_min, diff_max):
    """
    The fixed difficulty a password asks for, or ``None``.

    ``d=N`` or ``D=N`` (alone, or as one comma-separated option such as
    ``x,d=512``) with a finite positive number N asks for difficulty N,
    clamped to ``[diff_min, diff_max]``.  Anything else, including a
    malformed N, means "no request" — a miner's password is never a reason
    to refuse it.
    """
    if not isinstance(password, str):
        return None
    for option in password.split(","):
        option = option.strip()
        if option[:2] not in ("d=", "D="):
            continue
        try:
            value = float(option[2:])
        except ValueError:
            return None
        if not math.isfinite(value) or value <= 0:
            return None
        return clamp_difficulty(value, diff_min, diff_max)
    return None


def clamp_difficulty(value, diff_min, diff_max):
    """``value`` limited to ``[diff_min, diff_max]``."""
    return min(max(value, diff_min), diff_max)
