# -*- test-case-name: tests.alertcenter.test_config -*-
"""
The alertcenter's configuration: the seed's ``svr`` and ``redis`` blocks
(ref §10; the sample's Sentinel-style ``redis`` is accepted, ref §12.23) and
our ``limit`` section for rate limiting and the Redis-down queue.
"""

import socket

import attrs

from viabtc.config import (
    AlertBlock,
    LogBlock,
    ProcessBlock,
    RedisBlock,
    ServerBlock,
    positive,
    read_config_file,
)


@attrs.frozen
class LimitBlock:
    """
    ``limit`` (our addition, all optional): per group of similar alerts a
    ``burst`` then ``rate`` per second; over all alerts ``total_burst`` then
    ``total_rate`` per second; ``similar_prefix`` bytes of the message define
    a group, at most ``max_groups`` groups; ``queue`` alerts kept while Redis
    is down; ``redis_timeout`` seconds before a Redis reply counts as lost.
    """

    rate: float = 0.2
    burst: int = 10
    total_rate: float = 10.0
    total_burst: int = 100
    similar_prefix: int = 64
    max_groups: int = 10000
    queue: int = 10000
    redis_timeout: float = 10.0

    @classmethod
    def from_reader(cls, reader):
        if reader is None:
            return cls()
        kinds = {"burst": int, "total_burst": int, "similar_prefix": int, "max_groups": int, "queue": int}
        values = {}
        for field in attrs.fields(cls):
            if field.name in reader:
                values[field.name] = reader.required(field.name, kinds.get(field.name, float), positive)
        return cls(**values)


@attrs.frozen
class AlertCenterConfig:
    """
    ``svr`` (TCP and/or UDP binds, ``max_pkg_size`` = longest line),
    ``redis``, ``limit``; ``log``, ``process`` and ``alert`` as every role.
    ``identity`` names the alertcenter in its own entries: ``alert.host`` when
    given, else the machine's host name.
    """

    svr: ServerBlock
    redis: RedisBlock
    limit: LimitBlock = LimitBlock()
    log: LogBlock | None = None
    process: ProcessBlock | None = None
    alert: AlertBlock | None = None

    @property
    def identity(self):
        return self.alert.host if self.alert is not None else socket.gethostname()

    @classmethod
    def from_reader(cls, reader):
        def optional(key, block):
            section = reader.section(key, required=False)
            return None if section is None else block.from_reader(section)

        return cls(
            svr=ServerBlock.from_reader(reader.section("svr")),
            redis=RedisBlock.from_reader(reader.section("redis")),
            limit=LimitBlock.from_reader(reader.section("limit", required=False)),
            log=optional("log", LogBlock),
            process=optional("process", ProcessBlock),
            alert=optional("alert", AlertBlock),
        )

    @classmethod
    def from_file(cls, path):
        """Load and validate ``path``; ``ConfigError`` names the bad key."""
        return read_config_file(path, cls.from_reader)
