# -*- test-case-name: tests.bitpeer.test_config -*-
"""
Bitpeer's configuration: the seed's ``bitpeer.json`` as it is (ref §6.3,
§10) plus our keys.

The seed's keys: ``svr`` (the RPC server blockmasters and jobmasters push
blocks to), ``coin`` (the node whose tip anchors the headers believed),
``peer_config_path`` (the peers file, relative to this file's directory),
``reconnect_timeout`` (60 s), ``broadcast_limit`` (60), ``start_string``
(the network magic, 4 bytes of hex, required), ``jobmaster_url`` with
``request_auth`` and ``jobmaster_update_interval`` (30 s), ``cli`` and the
common ``alert``, ``log``, ``process`` blocks.  ``name`` is accepted and
ignored; ``http_svr`` (the seed required it and never used it) serves
``/metrics`` unless our ``metrics`` key is given (``viabtc.tap``).

Ours: ``jobmaster`` (static ``udp@ip:port`` hint addresses besides, or
instead of, the HTTP list; one of the two is required), ``secret`` (HMAC of
the hints and of the ``svr`` link), ``network`` (the chain's rules; by
default the network whose magic ``start_string`` is).
"""

import os

import attrs

from viabtc.bitcoin.network import NETWORKS, get_network
from viabtc.config import (
    SEED_IGNORED,
    AlertBlock,
    CoinRPCBlock,
    ConfigError,
    LogBlock,
    ProcessBlock,
    SecretBlock,
    ServerBlock,
    cli_address,
    hex_bytes,
    non_empty,
    optional_block,
    positive,
    read_config_beside,
)
from viabtc.rpc.jobmasters import hint_targets

IGNORED_KEYS = SEED_IGNORED | frozenset({"name"})


def _network(reader, magic):
    name = reader.optional("network", str, None)
    if name is not None:
        try:
            network = get_network(name)
        except ValueError as e:
            raise ConfigError(reader.path("network"), str(e)) from None
        if network.p2p_magic != magic:
            raise ConfigError("start_string", f"{magic.hex()} is not the magic of {network.name} "
                              f"({network.p2p_magic.hex()})")
        return network
    for network in NETWORKS:
        if network.p2p_magic == magic:
            return network
    raise ConfigError("start_string", f"{magic.hex()} is no known network's magic; "
                      "name the network in 'network'")


@attrs.frozen
class BitpeerConfig:
    """Bitpeer's settings, validated."""

    svr: ServerBlock
    coin: CoinRPCBlock
    peer_config_path: str
    start_string: bytes
    network: object
    reconnect_timeout: float = 60.0
    broadcast_limit: int = 60
    jobmasters: tuple = ()
    jobmaster_url: str | None = None
    request_auth: str | None = attrs.field(default=None, repr=False)
    jobmaster_update_interval: float = 30.0
    secret: SecretBlock | None = None
    cli: object = None
    alert: AlertBlock | None = None
    log: LogBlock | None = None
    process: ProcessBlock | None = None

    @classmethod
    def from_reader(cls, reader, base_dir="."):
        magic = reader.required("start_string", str, hex_bytes(4))
        peer_path = reader.required("peer_config_path", str, non_empty)
        config = cls(
            svr=ServerBlock.from_reader(reader.section("svr")),
            coin=CoinRPCBlock.from_reader(reader.section("coin")),
            peer_config_path=os.path.join(base_dir, peer_path),
            start_string=magic,
            network=_network(reader, magic),
            reconnect_timeout=reader.optional("reconnect_timeout", float, 60.0, positive),
            broadcast_limit=reader.optional("broadcast_limit", int, 60, positive),
            **hint_targets(reader),
            secret=SecretBlock.from_reader(reader),
            cli=cli_address(reader),
            alert=optional_block(reader, "alert", AlertBlock),
            log=optional_block(reader, "log", LogBlock),
            process=optional_block(reader, "process", ProcessBlock),
        )
        if config.svr.datagram_binds:
            raise ConfigError("svr.bind", "bitpeer's svr takes stream (tcp@) addresses only")
        return config

    @classmethod
    def from_file(cls, path):
        """Load and validate ``path``; ``ConfigError`` names the bad key."""
        return read_config_beside(path, cls.from_reader, IGNORED_KEYS)
