# -*- test-case-name: tests.stats.test_schema -*-
"""
The Redis schema: THE one place that spells Redis keys and event values.

Pool websites and payout systems read these keys (seed README "Redis Data
Format", ref §8.5), so every name and every byte of the event JSON must stay
what the seed writes.  Nothing else in viabtc formats a key by hand.
"""

MINING_KEYS = "mining:keys"
MONITOR_KEYS = "monitor:keys"
NEWBLOCK = "newblock"
NEWEVENT = "newevent"
NEWWORKER = "newworker"
ALERT_MESSAGE = "alert:message"

# Share hash types: share count, pow (sum of difficulties), goal (fraction of
# an expected block).
SHARE_COUNT = "s"
SHARE_POW = "p"
SHARE_GOAL = "g"
_SHARE_TYPES = frozenset((SHARE_COUNT, SHARE_POW, SHARE_GOAL))

# Our own bookkeeping keys all start with this; no pool website reads them.
INTERNAL_PREFIX = "viabtc:"
# Replay guards that make a retried write batch count once (see
# viabtc.stats.writer_agg).
APPLY_GUARD_PREFIX = INTERNAL_PREFIX + "applied:"
# Guards that let one ``newworker`` entry through per worker per hour, shared
# by every metawriter writing this Redis and surviving their restarts.
NEWWORKER_GUARD_PREFIX = INTERNAL_PREFIX + "newworker:"


def share_record_key(user, worker=None, reject=False):
    """
    The key a share record travels under and the tail of its Redis key:
    ``user``, ``user:worker``, ``user:reject`` or ``user:worker:reject``.
    """
    key = user if worker is None else user + ":" + worker
    return key + ":reject" if reject else key


def share_key(coin, t, user, worker=None, reject=False):
    """``<coin>:<t>:<user>[:<worker>][:reject]``, e.g. ``btc:p:alice:rig1``."""
    return share_hash_key(coin, t, share_record_key(user, worker, reject))


def share_hash_key(coin, t, record_key):
    """The share hash for a record key as it arrives in a cmd-102 record."""
    if t not in _SHARE_TYPES:
        raise ValueError("share type must be one of s, p, g; got %r" % (t,))
    return coin + ":" + t + ":" + record_key


def monitor_key(coin, key):
    """Pool-wide monitor hash, e.g. ``btc:m:pow``."""
    return coin + ":m:" + key


def monitor_host_key(coin, host, key):
    """Per-gateway monitor hash, e.g. ``btc:mh:10.0.0.7:pow``."""
    return coin + ":mh:" + host + ":" + key


def monitor_hosts_key(coin, key):
    """Set of the hosts that reported monitor ``key``, e.g. ``btc:mk:pow``."""
    return coin + ":mk:" + key


def apply_guard_key(batch_id):
    """The replay guard of one write batch (``batch_id`` is hex)."""
    return APPLY_GUARD_PREFIX + batch_id


def newworker_guard_key(coin, user, worker):
    """
    ``viabtc:newworker:<coin>:<user>:<worker>``: present while a ``newworker``
    entry for that worker is less than an hour old.  User and worker names
    are letters and digits (ref §4.2), so the colons cannot be ambiguous.
    """
    return NEWWORKER_GUARD_PREFIX + coin + ":" + user + ":" + worker


def format_float(value):
    """A float field value exactly as the seed writes it (``%.16g``)."""
    return "%.16g" % (value,)


# jansson's json_dumps(obj, 0) escapes '"', '\\', the five short control
# escapes and other control characters as \uXXXX with upper-case hex; every
# other character (including non-ASCII) is written raw.
_ESCAPES = {i: "\\u%04X" % i for i in range(0x20)}
_ESCAPES.update({
    ord('"'): '\\"', ord("\\"): "\\\\", ord("\b"): "\\b", ord("\f"): "\\f",
    ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t",
})


def _json_object(pairs):
    """
    A JSON object byte for byte as the seed's jansson ``json_dumps(o, 0)``
    prints it: keys in insertion order, ``", "`` and ``": "`` separators.
    """
    return "{" + ", ".join(
        '"%s": "%s"' % (name, value.translate(_ESCAPES)) for name, value in pairs
    ) + "}"


def block_json(user, worker, name, hash):
    """The ``newblock`` value: ``{"user", "worker", "name", "hash"}``."""
    return _json_object((("user", user), ("worker", worker), ("name", name), ("hash", hash)))


def event_json(user, worker, coin, peer, event):
    """The ``newevent`` value: ``{"user", "worker", "coin", "peer", "event"}``."""
    return _json_object((
        ("user", user), ("worker", worker), ("coin", coin), ("peer", peer), ("event", event),
    ))


def worker_json(user, worker, coin):
    """The ``newworker`` value: ``{"user", "worker", "coin"}``."""
    return _json_object((("user", user), ("worker", worker), ("coin", coin)))
