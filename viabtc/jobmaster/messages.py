# -*- test-case-name: tests.jobmaster.test_messages -*-
"""
The JSON bodies the jobmaster receives from other modules, parsed into values.

Three commands arrive from peers we do not control byte by byte: found blocks
(cmd 2, from gateways), ban-list updates (cmd 3, from gateways and brothers;
their body is shared with the gateway, ``viabtc.rpc.bans``) and height hints
(cmd 4, from bitpeer and poolbench).  The seed read their
fields without checking them (ref §12.20); here every field is checked for
presence, type and range before anything acts on it, and a bad body raises
``BadMessage`` naming the field, which the service logs and drops.
"""

import json
import re

import attrs

from viabtc.bitcoin.hashing import hash_from_display_hex

#: A coinbase transaction counts four weight units per (legacy) byte, so no
#: valid coinbase is longer than a quarter of the 4,000,000 block weight limit.
MAX_COINBASE_BYTES = 1_000_000

_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")
_JOB_ID = re.compile(r"[0-9a-f]{1,4}\Z")


class BadMessage(ValueError):
    """A module packet body that is malformed; the text names the field."""


@attrs.frozen
class FoundBlock:
    """
    A gateway's report of a share that meets the block target (cmd 2).

    ``block_hash`` is in internal byte order; ``header`` is the 80-byte block
    header and ``coinbase`` the full legacy-serialized coinbase transaction.
    """

    job_id: str
    block_hash: bytes
    header: bytes
    coinbase: bytes
    kind: str
    name: str


@attrs.frozen
class HeightHint:
    """
    "A block at ``height`` whose hash is ``prevhash`` exists on the network"
    (cmd 4, from bitpeer or poolbench).  ``prevhash`` is in internal order;
    ``nbits`` and ``target`` are present only when the hinting module knew
    them (the seed's never did).
    """

    height: int
    curtime: int
    prevhash: bytes
    nbits: int | None = None
    target: int | None = None


def _object(body):
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadMessage(f"body is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise BadMessage("body is not a JSON object")
    return value


def _field(obj, key, kind):
    if key not in obj:
        raise BadMessage(f"missing {key!r}")
    value = obj[key]
    # bool is an int in Python; JSON true is never a valid number here.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadMessage(f"{key!r} has the wrong type")
    return value


def _uint(obj, key, bits):
    value = _field(obj, key, int)
    if not 0 <= value < (1 << bits):
        raise BadMessage(f"{key!r} out of range")
    return value


def _hex(obj, key, length=None):
    value = _field(obj, key, str)
    if length is not None and len(value) != 2 * length:
        raise BadMessage(f"{key!r} must be {2 * length} hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise BadMessage(f"{key!r} is not hex") from None


def _hash(obj, key):
    value = _field(obj, key, str)
    if not _HEX64.match(value):
        raise BadMessage(f"{key!r} must be 64 hex digits")
    return hash_from_display_hex(value)


def parse_found_block(body):
    """Parse a cmd 2 body; raise ``BadMessage`` naming the bad field."""
    obj = _object(body)
    job_id = _field(obj, "job_id", str)
    if not _JOB_ID.match(job_id):
        raise BadMessage("'job_id' must be 1 to 4 lowercase hex digits")
    block_hash = _hash(obj, "hash")
    header = _hex(obj, "block_head", 80)
    coinbase = _hex(obj, "coinbase")
    if not 60 <= len(coinbase) <= MAX_COINBASE_BYTES:
        raise BadMessage("'coinbase' has an impossible length")
    kind = _field(obj, "type", str)
    if kind not in ("main", "aux"):
        raise BadMessage("'type' must be 'main' or 'aux'")
    name = obj.get("name", "")
    if not isinstance(name, str):
        raise BadMessage("'name' has the wrong type")
    return FoundBlock(job_id, block_hash, header, coinbase, kind, name)


def parse_height_hint(body):
    """Parse a cmd 4 body; raise ``BadMessage`` naming the bad field."""
    obj = _object(body)
    height = _uint(obj, "height", 31)
    if height == 0:
        raise BadMessage("'height' must be positive")
    curtime = _uint(obj, "curtime", 32)
    prevhash = _hash(obj, "prevhash")
    nbits = _uint(obj, "nbits", 32) if "nbits" in obj else None
    target = int.from_bytes(_hex(obj, "target", 32), "big") if "target" in obj else None
    return HeightHint(height, curtime, prevhash, nbits, target)
