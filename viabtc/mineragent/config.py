# -*- test-case-name: tests.mineragent.test_config -*-
"""
The mineragent's configuration: the seed's ``mineragent.json`` (ref §10) as
it is, plus optional keys of ours.

Seed keys: ``svr`` (the miners' port), ``stratum_host``/``stratum_port``
(the gateway; a host name is resolved at every connect, as the seed's
``gethostbyname``), ``worker_num``, the vardiff keys (``diff_min``,
``diff_max``, ``diff_default``, ``target_time``, ``retarget_time``),
``connect_timeout`` (300), ``broadcast_timeout`` (55),
``client_max_idle_time`` (300), ``cli``, ``log``, ``process``.
``worker_num`` processes serve the miners' port, as the seed's (ref §5.1),
each one agent with its own upstream connection and agent id
(``viabtc.mineragent.workers``): ``agent_id + worker_num - 1`` must fit
the 32 bits, and the ``svr`` binds must be ones the workers can share.

Our keys, all optional:

* ``upstream``: more gateways, tried in order after ``stratum_host``/
  ``stratum_port`` when one cannot be reached: the seed's ``tcp@ip:port``,
  ``ip:port``, or Twisted client endpoints (``tcp:host=h:port=p``,
  ``ssl:host=h:port=p:caCertFile=ca.pem:hostname=h`` -- a TLS upstream must
  verify its gateway, or start-up stops naming the key).  With no
  ``stratum_host``, ``upstream`` alone names the gateways.
* ``agent_id``: the 32-bit id in every coinbase, worker ``i``'s
  ``agent_id + i`` (default: random at each start, as the seed's).
* ``agent_v2`` (true): offer protocol v2 (acknowledged shares); false speaks
  only the seed's v1.
* ``max_queued_shares`` (1,000,000): shares kept while the gateway is
  unreachable; past it the oldest are dropped (and their miners told).
* ``limits``: the miners' port's abuse limits (``viabtc.stratum.limits``);
  inside a farm every miner may come from one address, so the per-address
  connection limit defaults to the total one.
"""

import secrets

import attrs
from twisted.logger import Logger

from viabtc.config import (
    SEED_IGNORED,
    ConfigError,
    LogBlock,
    ProcessBlock,
    ServerBlock,
    cli_address,
    in_range,
    non_empty,
    optional_block,
    port,
    positive,
    read_config_file,
    parse_address,
)
from viabtc.stratum.context import StratumSettings
from viabtc.stratum.limits import Limits
from viabtc.stratum.settings import read_vardiff
from viabtc.workers import MAX_WORKER_NUM, check_shared_binds

_log = Logger(namespace="viabtc.mineragent.config")

#: ``agent_id`` is a u32 of the coinbase (ref §4.4); worker ``i`` of a
#: ``worker_num`` agent is ``agent_id + i``.
MAX_AGENT_ID = 0xFFFFFFFF


def _upstreams(reader):
    found = []
    if "stratum_host" in reader or "stratum_port" in reader:
        host = reader.required("stratum_host", str, non_empty)
        number = reader.required("stratum_port", int, port)
        text = f"tcp:host={host}:port={number}"
        found.append(parse_address(text, reader.path("stratum_host")))
    if "upstream" in reader:
        found.extend(reader.addresses("upstream", side="client"))
    if not found:
        raise ConfigError("stratum_host", "required: the gateway to connect to (or upstream: [...])")
    for i, address in enumerate(found):
        if address.is_datagram:
            raise ConfigError(f"upstream[{i}]", f"{address.text!r}: the gateway link is a stream")
    return tuple(found)


def _limits(reader):
    section = reader.section("limits", required=False)
    limits = Limits.from_reader(section)
    if section is None or "max_connections_per_ip" not in section:
        limits = attrs.evolve(limits, max_connections_per_ip=limits.max_connections)
    return limits


@attrs.frozen
class MinerAgentConfig:
    """The mineragent's settings, validated."""

    svr: ServerBlock
    upstreams: tuple
    stratum: StratumSettings
    agent_id: int
    agent_v2: bool = True
    #: False when ``agent_id`` was drawn at random (no key): a reload keeps the running one.
    agent_id_chosen: bool = True
    connect_timeout: float = 300.0
    broadcast_timeout: float = 55.0
    max_queued_shares: int = 1_000_000
    worker_num: int = 1
    limits: Limits = Limits()
    cli: object = None
    log: LogBlock | None = None
    process: ProcessBlock | None = None

    @classmethod
    def from_reader(cls, reader):
        svr = ServerBlock.from_reader(reader.section("svr"))
        if not svr.stream_binds or svr.datagram_binds:
            raise ConfigError("svr.bind", "Stratum listens on stream addresses only (tcp@, ssl:, unix)")
        stratum = StratumSettings(
            vardiff=read_vardiff(reader),
            max_pkg_size=svr.max_pkg_size,
            client_max_idle_time=reader.optional("client_max_idle_time", float, 300.0, positive),
        )
        worker_num = reader.optional("worker_num", int, 1, in_range(1, MAX_WORKER_NUM))
        agent_id = reader.optional("agent_id", int, None, in_range(0, MAX_AGENT_ID))
        if worker_num > 1:
            check_shared_binds(svr.binds)
            if agent_id is not None and agent_id + worker_num - 1 > MAX_AGENT_ID:
                raise ConfigError("worker_num", f"agent_id {agent_id} + {worker_num} workers passes {MAX_AGENT_ID}")
        return cls(
            svr=svr,
            upstreams=_upstreams(reader),
            stratum=stratum,
            agent_id=secrets.randbelow(MAX_AGENT_ID + 2 - worker_num) if agent_id is None else agent_id,
            agent_v2=reader.optional("agent_v2", bool, True),
            agent_id_chosen=agent_id is not None,
            connect_timeout=reader.optional("connect_timeout", float, 300.0, positive),
            broadcast_timeout=reader.optional("broadcast_timeout", float, 55.0, positive),
            max_queued_shares=reader.optional("max_queued_shares", int, 1_000_000, positive),
            worker_num=worker_num,
            limits=_limits(reader),
            cli=cli_address(reader),
            log=optional_block(reader, "log", LogBlock),
            process=optional_block(reader, "process", ProcessBlock),
        )

    @classmethod
    def from_file(cls, path):
        """Load and check ``path``; ``ConfigError`` names the first bad key."""
        return read_config_file(path, cls.from_reader, SEED_IGNORED, _log)
