# -*- test-case-name: tests.dashboard.test_config -*-
"""
The dashboard's configuration (``etc/dashboard.json``).

The seed had no dashboard; its keys are taken in the forms operators know:
``redis`` as the metawriter's (``host``, ``port``, ``auth``), ``coin`` as the
gateway's stats prefix (e.g. ``btc``), ``http_svr`` as the seed's server
block (``bind``, ``max_pkg_size``, ``keep_alive``).  Our keys, all optional:

- ``refresh``: seconds between Redis reads (30); pages are served from the
  last read, so many viewers cost Redis nothing;
- ``history_minutes``: minutes of history charted (360);
- ``worker_minutes``: minutes of the per-worker charts and list (60);
- ``max_workers``: workers read per refresh, most recently active first
  (2000);
- ``max_blocks``: newest ``newblock`` entries shown (50);
- ``main_chain``: the ``name`` of main-chain blocks in ``newblock``
  (``coin`` in upper case, e.g. ``BTC``); other names are aux chains;
- ``node``: a coin daemon in the seed's coin-RPC block form (as the
  jobmaster's ``main_coin``: inline ``host``/``port``/``user``/``pass`` or
  ``addr``, ``name`` optional), asked only for the height and time of the
  main-chain blocks shown (``heights.py``); without it heights show "–";
- ``node_timeout``: seconds one such lookup may take (5);
- ``log``, ``process``, ``alert`` as every role.
"""

import attrs

from viabtc.config import (
    AlertBlock,
    CoinRPCBlock,
    ConfigError,
    HTTPBlock,
    LogBlock,
    ProcessBlock,
    RedisBlock,
    non_empty,
    optional_block,
    positive,
    read_config_file,
)


@attrs.frozen
class DashboardConfig:
    """A validated dashboard configuration (see the module docstring)."""

    redis: RedisBlock
    coin: str
    http_svr: HTTPBlock
    refresh: float = 30.0
    history_minutes: int = 360
    worker_minutes: int = 60
    max_workers: int = 2000
    max_blocks: int = 50
    main_chain: str = attrs.field(default=attrs.Factory(lambda self: self.coin.upper(), takes_self=True))
    redis_timeout: float = 10.0
    node: CoinRPCBlock | None = None
    node_timeout: float = 5.0
    log: LogBlock | None = None
    process: ProcessBlock | None = None
    alert: AlertBlock | None = None

    @classmethod
    def from_reader(cls, reader):
        coin = reader.required("coin", str, non_empty)
        http_svr = HTTPBlock.from_reader(reader.section("http_svr"))
        if not http_svr.server.stream_binds:
            raise ConfigError("http_svr.bind", "needs a tcp address")
        node = reader.section("node", required=False)
        return cls(
            redis=RedisBlock.from_reader(reader.section("redis")),
            coin=coin,
            http_svr=http_svr,
            refresh=reader.optional("refresh", float, 30.0, positive),
            history_minutes=reader.optional("history_minutes", int, 360, positive),
            worker_minutes=reader.optional("worker_minutes", int, 60, positive),
            max_workers=reader.optional("max_workers", int, 2000, positive),
            max_blocks=reader.optional("max_blocks", int, 50, positive),
            main_chain=reader.optional("main_chain", str, coin.upper(), non_empty),
            redis_timeout=reader.optional("redis_timeout", float, 10.0, positive),
            node=None if node is None else CoinRPCBlock.from_reader(node, default_name=coin.upper()),
            node_timeout=reader.optional("node_timeout", float, 5.0, positive),
            log=optional_block(reader, "log", LogBlock),
            process=optional_block(reader, "process", ProcessBlock),
            alert=optional_block(reader, "alert", AlertBlock),
        )

    @classmethod
    def from_file(cls, path):
        """Load and validate ``path``; ``ConfigError`` names the bad key."""
        return read_config_file(path, cls.from_reader)
