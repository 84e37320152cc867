"""
Statistics bodies written byte by byte as the seed's C gateway writes them
(``gw_aggregator.c``, ref §4.9), whatever the values: a C gateway packs a
``goal`` of inf or NaN, and a negative int64 count as a huge varint, which
our own encoder refuses to produce.
"""

import struct

from viabtc.stats.records import encode_varint

#: one character per field, as in ``viabtc.stats.records``
LAYOUTS = {102: "sssiid", 105: "sssi", 106: "sssd"}


def raw_record(command, values):
    """The bytes of one record of ``command`` (strings, ints as u64 varints, doubles)."""
    out = []
    for kind, value in zip(LAYOUTS[command], values):
        if kind == "s":
            raw = value if isinstance(value, bytes) else value.encode()
            out.append(encode_varint(len(raw)) + raw)
        elif kind == "i":
            out.append(encode_varint(value % 2**64))
        else:
            out.append(struct.pack("<d", value))
    return b"".join(out)


def seed_body(command, rows, prefix=bytes(range(32))):
    """A whole body: 32 unstamped leading bytes, then each row's record."""
    return prefix + b"".join(raw_record(command, row) for row in rows)
