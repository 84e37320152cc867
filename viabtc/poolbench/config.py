# -*- test-case-name: tests.poolbench.test_config -*-
"""
Poolbench's configuration: the seed's ``poolbench.json`` (ref §7, §10) plus
our keys.

The seed's keys: ``pool_list`` (``name``, ``host``, ``port``, ``user``,
``pass``, ``is_notify`` (true), ``is_self`` (false)), ``is_notify``
(required), ``max_delay`` (required, seconds), ``jobmaster_url`` with
``request_auth`` and ``jobmaster_update_interval`` (30), and the common
``cli``, ``alert``, ``log`` and ``process`` blocks.

Ours: ``jobmaster`` (an array of ``udp@ip:port`` addresses hinted besides,
or instead of, the HTTP list; at least one of the two is required), and
``secret`` (the HMAC key tagging every hint, which our jobmaster requires
when it has one).  Pool ``host`` may be a DNS name (resolved again on every
connect, as the seed does).
"""

import attrs

from viabtc.config import (
    SEED_IGNORED,
    AlertBlock,
    ConfigError,
    LogBlock,
    ProcessBlock,
    SecretBlock,
    cli_address,
    non_empty,
    non_negative,
    optional_block,
    port,
    read_config_file,
)
from viabtc.rpc.jobmasters import hint_targets

#: The seed's sample names the module in a top-level ``name`` it never reads.
IGNORED_KEYS = SEED_IGNORED | frozenset({"name"})


@attrs.frozen
class PoolEntry:
    """One watched pool (``pool_list[i]``)."""

    name: str
    host: str
    port: int
    user: str
    password: str = attrs.field(repr=False)
    is_notify: bool = True
    is_self: bool = False

    @classmethod
    def from_reader(cls, reader):
        return cls(
            name=reader.required("name", str, non_empty),
            host=reader.required("host", str, non_empty),
            port=reader.required("port", int, port),
            user=reader.required("user", str, non_empty),
            password=reader.optional("pass", str, ""),
            is_notify=reader.optional("is_notify", bool, True),
            is_self=reader.optional("is_self", bool, False),
        )


def _pools(reader):
    pools = tuple(PoolEntry.from_reader(r) for r in reader.sections("pool_list", min_length=1))
    seen = set()
    for i, pool in enumerate(pools):
        if pool.name in seen:
            raise ConfigError(f"pool_list[{i}].name", f"{pool.name!r} is used twice")
        seen.add(pool.name)
    return pools


@attrs.frozen
class PoolbenchConfig:
    """Poolbench's settings, validated."""

    pools: tuple
    notify: bool
    max_delay: float
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
    def from_reader(cls, reader):
        config = cls(
            pools=_pools(reader),
            notify=reader.required("is_notify", bool),
            max_delay=reader.required("max_delay", float, non_negative),
            **hint_targets(reader),
            secret=SecretBlock.from_reader(reader),
            cli=cli_address(reader),
            alert=optional_block(reader, "alert", AlertBlock),
            log=optional_block(reader, "log", LogBlock),
            process=optional_block(reader, "process", ProcessBlock),
        )
        return config

    @classmethod
    def from_file(cls, path):
        """Load and validate ``path``; ``ConfigError`` names the bad key."""
        return read_config_file(path, cls.from_reader, IGNORED_KEYS)
