# -*- test-case-name: tests.metawriter.test_config -*-
"""
The metawriter's configuration: the seed's keys (ref §10: ``svr``,
``monitor``, ``redis``, ``brother``, ``key_expire``, ``dup_timeout``,
``trust_file``, ``cli``, ``alert``) and our additions, all optional:

- ``journal``: directory of the write-ahead journal that makes an ACK safe
  (default ``/var/lib/viabtc/metawriter``);
- ``retention_days``: EXPIRE stats keys that many days after their last
  write (off by default, as in the seed);
- ``redis_retry_interval``: seconds between Redis write retries (1);
- ``redis_timeout``: seconds before an unanswered Redis write counts as lost (10);
- ``flush_delay``: seconds after each minute boundary the minute's flush
  waits (0, the seed's timing; below 30).  Our gateways ship a completed
  minute within a second or two of its end: with a few seconds here it is
  in Redis at once instead of one flush (a minute) later;
- ``secret``: the shared HMAC secret of module links.

``trust_file`` is read at start-up, so a missing or broken file stops the
role with one line naming the key; a relative path is taken from the config
file's directory (where the seed's deployments keep ``trust.json``).
"""

import os

import attrs

from viabtc.config import (
    AlertBlock,
    ConfigError,
    LogBlock,
    ProcessBlock,
    RedisBlock,
    RPCClientBlock,
    SecretBlock,
    ServerBlock,
    cli_address,
    in_range,
    link_block,
    non_empty,
    optional_block,
    positive,
    read_config_beside,
)
from viabtc.metawriter.trust import TrustFileError, load_trust_file
from viabtc.stats.writer_agg import DUP_TIMEOUT, KEY_EXPIRE

DEFAULT_JOURNAL = "/var/lib/viabtc/metawriter"
_flush_delay = in_range(0, 29)


@attrs.frozen
class MetaWriterConfig:
    """A validated metawriter configuration (see the module docstring)."""

    svr: ServerBlock
    redis: RedisBlock
    alert: AlertBlock
    trust_file: str
    monitor: ServerBlock | None = None
    brother: RPCClientBlock | None = None
    cli: object = None
    key_expire: int = KEY_EXPIRE
    dup_timeout: int = DUP_TIMEOUT
    journal: str = DEFAULT_JOURNAL
    retention_days: int | None = None
    redis_retry_interval: float = 1.0
    redis_timeout: float = 10.0
    flush_delay: float = 0.0
    secret: SecretBlock | None = None
    log: LogBlock | None = None
    process: ProcessBlock | None = None

    @property
    def retention(self):
        """Seconds a stats key lives after its last write, or None (forever)."""
        return None if self.retention_days is None else self.retention_days * 86400

    @classmethod
    def from_reader(cls, reader, base_dir="."):
        trust_file = reader.required("trust_file", str, non_empty)
        trust_file = os.path.join(base_dir, trust_file)
        try:
            load_trust_file(trust_file)
        except TrustFileError as e:
            raise ConfigError(reader.path("trust_file"), str(e)) from None
        journal = reader.optional("journal", str, DEFAULT_JOURNAL, non_empty)
        svr = ServerBlock.from_reader(reader.section("svr"))
        if not svr.binds:
            raise ConfigError("svr.bind", "needs at least one address")
        return cls(
            svr=svr,
            redis=RedisBlock.from_reader(reader.section("redis")),
            alert=AlertBlock.from_reader(reader.section("alert")),
            trust_file=trust_file,
            monitor=optional_block(reader, "monitor", ServerBlock),
            brother=link_block(reader, "brother", required=False),
            cli=cli_address(reader),
            key_expire=reader.optional("key_expire", int, KEY_EXPIRE, positive),
            dup_timeout=reader.optional("dup_timeout", int, DUP_TIMEOUT, positive),
            journal=os.path.join(base_dir, journal),
            retention_days=reader.optional("retention_days", int, None, positive),
            redis_retry_interval=reader.optional("redis_retry_interval", float, 1.0, positive),
            redis_timeout=reader.optional("redis_timeout", float, 10.0, positive),
            flush_delay=reader.optional("flush_delay", float, 0.0, _flush_delay),
            secret=SecretBlock.from_reader(reader),
            log=optional_block(reader, "log", LogBlock),
            process=optional_block(reader, "process", ProcessBlock),
        )

    @classmethod
    def from_file(cls, path):
        """Load and validate ``path``; ``ConfigError`` names the bad key."""
        return read_config_beside(path, cls.from_reader)
