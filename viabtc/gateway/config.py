# -*- test-case-name: tests.gateway.test_config -*-
"""
The gateway's configuration: the seed's ``gateway.json`` (ref §10) as it
is, plus our optional keys.

The seed's sample must load unchanged.  ``worker_num`` is the seed's: that
many worker processes share the Stratum port, worker ``i`` with
``worker_id + i`` (coinbase uniqueness rests on it, ref §4.3), so
``worker_id + worker_num - 1`` must fit the 16 bits, and the ``svr`` binds
must be ones a socket can be shared for (``viabtc.gateway.workers``).

``queue`` named the seed's overflow file; here it names the directory of
the statistics journal (``viabtc.rpc.filequeue``), which keeps every stats
packet until the writer acknowledged it.  A relative path is taken from the
config file's directory.

Our keys: ``secret`` (HMAC of module packets, both links),
``stats_drain_timeout`` (seconds a graceful stop waits for the writer's
ACKs), ``first_job_wait`` (seconds after start the Stratum ports hold new
miners in the kernel's queue until the first job, ``viabtc.gateway.server``),
``agent_v2`` (default true; false speaks only the seed's ``agent.*`` v1 to
mineragents, docs/mineragent.md) and ``limits`` (the Stratum port's abuse limits, ``viabtc.stratum.
limits``; every key optional).  ``http_svr.keep_alive`` is the seed's (ref §4.11).
"""

import os
import socket

import attrs
from twisted.logger import Logger

from viabtc.config import (
    SEED_IGNORED,
    AlertBlock,
    ConfigError,
    HTTPBlock,
    LogBlock,
    ProcessBlock,
    RPCClientBlock,
    SecretBlock,
    ServerBlock,
    cli_address,
    link_block,
    optional_block,
    in_range,
    non_empty,
    non_negative,
    positive,
    read_config_beside,
)
from viabtc.stratum.context import StratumSettings
from viabtc.stratum.limits import Limits
from viabtc.stratum.settings import read_vardiff
from viabtc.workers import MAX_WORKER_NUM, check_shared_binds

_log = Logger(namespace="viabtc.gateway.config")

#: ``worker_id`` is shifted left by 16 into a 32-bit field of the scriptSig,
#: so only 16 bits of it survive (ref §4.3).
MAX_WORKER_ID = 0xFFFF


def check_workers(svr, worker_id, worker_num):
    """``worker_num`` workers need distinct 16-bit worker ids and Stratum binds they can share."""
    if worker_id + worker_num - 1 > MAX_WORKER_ID:
        raise ConfigError("worker_num", f"worker_id {worker_id} + {worker_num} workers passes {MAX_WORKER_ID}")
    check_shared_binds(svr.binds)


def _job(reader):
    block = RPCClientBlock.from_reader(reader.section("job"))
    for i, address in enumerate(block.addrs):
        if address.is_datagram:
            raise ConfigError(f"job.addr[{i}]", f"{address.text!r}: the jobmaster link is TCP")
    return block


@attrs.frozen
class GatewayConfig:
    """The gateway's settings, validated."""

    svr: ServerBlock
    job: RPCClientBlock
    writer: RPCClientBlock
    coin: str
    queue: str
    worker_id: int
    stratum: StratumSettings
    http_svr: HTTPBlock | None = None
    monitor: ServerBlock | None = None
    cli: object = None
    worker_num: int = 1
    stats_drain_timeout: float = 3.0
    first_job_wait: float = 10.0
    limits: Limits = Limits()
    agent_v2: bool = True
    secret: SecretBlock | None = None
    alert: AlertBlock | None = None
    log: LogBlock | None = None
    process: ProcessBlock | None = None

    @property
    def host(self):
        """The gateway's identity in statistics and alerts: ``alert.host``, else the host name."""
        return self.alert.host if self.alert is not None else socket.gethostname()

    @classmethod
    def from_reader(cls, reader, base_dir="."):
        svr = ServerBlock.from_reader(reader.section("svr"))
        if not svr.stream_binds or svr.datagram_binds:
            raise ConfigError("svr.bind", "Stratum listens on stream addresses only (tcp@, ssl:, unix)")
        client_max_idle_time = reader.optional("client_max_idle_time", float, 300.0, positive)
        stratum = StratumSettings(
            vardiff=read_vardiff(reader),
            max_pkg_size=svr.max_pkg_size,
            client_max_idle_time=client_max_idle_time,
        )
        worker_num = reader.optional("worker_num", int, 1, in_range(1, MAX_WORKER_NUM))
        worker_id = reader.required("worker_id", int, in_range(0, MAX_WORKER_ID))
        if worker_num > 1:
            check_workers(svr, worker_id, worker_num)
        return cls(
            svr=svr,
            job=_job(reader),
            writer=link_block(reader, "writer"),
            coin=reader.required("coin", str, non_empty),
            queue=os.path.join(base_dir, reader.required("queue", str, non_empty)),
            worker_id=worker_id,
            stratum=stratum,
            http_svr=optional_block(reader, "http_svr", HTTPBlock),
            monitor=optional_block(reader, "monitor", ServerBlock),
            cli=cli_address(reader),
            worker_num=worker_num,
            stats_drain_timeout=reader.optional("stats_drain_timeout", float, 3.0, non_negative),
            first_job_wait=reader.optional("first_job_wait", float, 10.0, non_negative),
            limits=Limits.from_reader(reader.section("limits", required=False)),
            agent_v2=reader.optional("agent_v2", bool, True),
            secret=SecretBlock.from_reader(reader),
            alert=optional_block(reader, "alert", AlertBlock),
            log=optional_block(reader, "log", LogBlock),
            process=optional_block(reader, "process", ProcessBlock),
        )

    @classmethod
    def from_file(cls, path):
        """Load and check ``path``; ``ConfigError`` names the first bad key."""
        return read_config_beside(path, cls.from_reader, SEED_IGNORED, _log)
