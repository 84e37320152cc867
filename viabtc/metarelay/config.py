# -*- test-case-name: tests.metarelay.test_config -*-
"""
The metarelay's configuration: the seed's ``svr``, ``monitor``, ``writer``
(RPC client block toward the metawriter), ``queue`` and ``trust`` keys
(ref §10), the common ``alert``, ``log`` and ``process`` blocks, and our
optional ``secret``.

``queue`` named the seed's overflow file; here it names the directory of
the relay's durable queue (``viabtc.rpc.filequeue``), which holds every
packet until the metawriter ACKed it.  A relative path is taken from the
config file's directory.  ``trust`` (IP addresses or CIDR networks) now
guards UDP as well as TCP (ref §12.2).
"""

import ipaddress
import os

import attrs

from viabtc.config import (
    AlertBlock,
    LogBlock,
    ProcessBlock,
    RPCClientBlock,
    SecretBlock,
    ServerBlock,
    link_block,
    non_empty,
    optional_block,
    read_config_beside,
)


def _network(value):
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or network") from None
    return value


@attrs.frozen
class MetaRelayConfig:
    """A validated metarelay configuration (see the module docstring)."""

    svr: ServerBlock
    writer: RPCClientBlock
    queue: str
    trust: tuple
    monitor: ServerBlock | None = None
    secret: SecretBlock | None = None
    alert: AlertBlock | None = None
    log: LogBlock | None = None
    process: ProcessBlock | None = None

    @classmethod
    def from_reader(cls, reader, base_dir="."):
        return cls(
            svr=ServerBlock.from_reader(reader.section("svr")),
            writer=link_block(reader, "writer"),
            queue=os.path.join(base_dir, reader.required("queue", str, non_empty)),
            trust=reader.list("trust", str, _network),
            monitor=optional_block(reader, "monitor", ServerBlock),
            secret=SecretBlock.from_reader(reader),
            alert=optional_block(reader, "alert", AlertBlock),
            log=optional_block(reader, "log", LogBlock),
            process=optional_block(reader, "process", ProcessBlock),
        )

    @classmethod
    def from_file(cls, path):
        """Load and validate ``path``; ``ConfigError`` names the bad key."""
        return read_config_beside(path, cls.from_reader)
