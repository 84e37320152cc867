# -*- test-case-name: tests.blockmaster.test_config -*-
"""
Blockmaster's configuration: the seed's ``blockmaster.json`` (ref §6.1,
§10) read as the seed reads it, plus our keys.

The seed's keys: ``svr`` (TCP and UDP binds, ``max_pkg_size``), ``coin``
(the local node), ``mempool_timeout`` (10 s), ``blockmaster_url`` with
``request_auth`` and ``blockmaster_update_interval`` (30 s),
``blockmaster_timeout`` (60 s, the heartbeat timeout towards peer
blockmasters), ``bitpeer`` (``tcp@`` addresses), ``http_svr`` (required by
the seed, never used by it: here it serves ``/metrics`` unless our
``metrics`` key is given, ``viabtc.tap``) and the common ``cli``,
``alert``, ``log`` and ``process`` blocks.

Where we differ: the static ``blockmaster`` array, which the seed ignored,
is used beside the HTTP list (either may be absent or empty: a lone region
relays to its bitpeers and node only); ``svr.max_pkg_size`` below
``MIN_PKG_SIZE`` is raised to it with a warning, since the sample's 2 MiB
cannot carry a full block (ref §12.16).  Ours: ``secret`` (HMAC tags on
every link, our roles only), ``trust`` (IP addresses or networks allowed to
send to ``svr``; the seed took blocks from anyone, ref §12.1), ``compact`` (offer the compact mode to peer
blockmasters; default true), ``tx_cache_ttl`` (600 s) and
``request_timeout`` (10 s, the seed's state table).
"""

import ipaddress

import attrs
from twisted.logger import Logger

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
    optional_block,
    positive,
    read_config_file,
)
from viabtc.rpc.addresslist import http_url

#: Keys the seed reads but that have no use here.
IGNORED_KEYS = SEED_IGNORED | frozenset({"name"})

#: Smallest frame that carries a maximum-size block (4 MB) with room to spare.
MIN_PKG_SIZE = 8 * 1024 * 1024

_log = Logger()


def _stream_clients(reader, key):
    """``key``: an array (possibly empty) of stream client addresses (``tcp@ip:port``)."""
    if not reader.list(key, str, required=False):
        return ()
    result = reader.addresses(key, side="client")
    for i, address in enumerate(result):
        if address.is_datagram:
            raise ConfigError(f"{reader.path(key)}[{i}]",
                              f"{address.text!r}: blocks need a stream (tcp@) address")
    return result


def _trust(reader):
    """``trust``: IP addresses or CIDR networks allowed to connect to ``svr``; None: anyone."""
    entries = reader.list("trust", str, required=False, default=None)
    if entries is None:
        return None
    for i, entry in enumerate(entries):
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(f"{reader.path('trust')}[{i}]",
                              f"{entry!r} is not an IP address or network") from None
    return tuple(entries)


@attrs.frozen
class BlockmasterConfig:
    """Blockmaster's settings, validated."""

    svr: ServerBlock
    coin: CoinRPCBlock
    blockmasters: tuple = ()
    bitpeers: tuple = ()
    blockmaster_url: str | None = None
    request_auth: str | None = attrs.field(default=None, repr=False)
    blockmaster_update_interval: float = 30.0
    blockmaster_timeout: float = 60.0
    mempool_timeout: float = 10.0
    tx_cache_ttl: float = 600.0
    request_timeout: float = 10.0
    compact: bool = True
    trust: tuple | None = None
    secret: SecretBlock | None = None
    cli: object = None
    alert: AlertBlock | None = None
    log: LogBlock | None = None
    process: ProcessBlock | None = None

    @classmethod
    def from_reader(cls, reader):
        svr = ServerBlock.from_reader(reader.section("svr"))
        if svr.max_pkg_size < MIN_PKG_SIZE:
            _log.warn("config: svr.max_pkg_size {size} cannot carry a full block; using {floor}",
                      size=svr.max_pkg_size, floor=MIN_PKG_SIZE)
            svr = attrs.evolve(svr, max_pkg_size=MIN_PKG_SIZE)
        return cls(
            svr=svr,
            coin=CoinRPCBlock.from_reader(reader.section("coin")),
            blockmasters=_stream_clients(reader, "blockmaster"),
            bitpeers=_stream_clients(reader, "bitpeer"),
            blockmaster_url=reader.optional("blockmaster_url", str, None, http_url),
            request_auth=reader.optional("request_auth", str, None),
            blockmaster_update_interval=reader.optional("blockmaster_update_interval", float, 30.0,
                                                        positive),
            blockmaster_timeout=reader.optional("blockmaster_timeout", float, 60.0, positive),
            mempool_timeout=reader.optional("mempool_timeout", float, 10.0, positive),
            tx_cache_ttl=reader.optional("tx_cache_ttl", float, 600.0, positive),
            request_timeout=reader.optional("request_timeout", float, 10.0, positive),
            compact=reader.optional("compact", bool, True),
            trust=_trust(reader),
            secret=SecretBlock.from_reader(reader),
            cli=cli_address(reader),
            alert=optional_block(reader, "alert", AlertBlock),
            log=optional_block(reader, "log", LogBlock),
            process=optional_block(reader, "process", ProcessBlock),
        )

    @classmethod
    def from_file(cls, path):
        """Load and validate ``path``; ``ConfigError`` names the bad key."""
        return read_config_file(path, cls.from_reader, IGNORED_KEYS)
