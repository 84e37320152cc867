# -*- test-case-name: tests.gateway.test_workers -*-
"""
A gateway of ``worker_num`` processes (ref §4.1): the seed's process model
on ``viabtc.workers``.

The parent binds ``svr.bind`` once and serves ``monitor``; it runs no
Stratum, no links.  Worker ``i`` is a whole ``GatewayService`` adopting the
parent's Stratum sockets, with

* ``worker_id + i`` in its coinbases (ref §4.3) and ``i`` in the top bits
  of its extranonce1 values (``IdentityAllocator``): no two sessions of the
  gateway share either;
* its own jobmaster link, as in the seed: jobs and bans come to every
  worker from the jobmaster itself, and a block candidate goes straight
  from the worker that found it, with no hop through the parent that could
  delay or lose it;
* its own statistics link and journal (``queue`` for worker 0, so a
  one-process journal is still resent, ``queue.<i>`` for the others).  The
  metawriter sums share and monitor records of one minute and one host
  whatever connection they came on (ref §8.4, §8.5), so N streams leave the
  same Redis contents as one process would (``connections`` included: each
  worker reports its own, and their sum is the gateway's); a worker that
  dies leaves its unacknowledged minutes in its journal, and its
  replacement resends them;
* ``http_svr`` and ``cli`` on their port + ``i`` (a unix path + ``.i``), as
  the seed's workers.

A worker gets the configuration the parent read at start-up on its
standard input (not in its environment, which other processes of the user
can read: the config holds the HMAC secret), so an edited file cannot give
a restarted worker settings its siblings do not have.
"""

import os
import sys

import attrs
from twisted.application import service
from twisted.logger import Logger

from viabtc.config import ConfigReader
from viabtc.gateway.config import GatewayConfig
from viabtc.gateway.context import ROLE
from viabtc.gateway.reload import RELOADABLE, reload_gateway
from viabtc.gateway.service import GatewayService
from viabtc.reload import HangupReload
from viabtc.service import listen_monitor
from viabtc.stratum.context import IdentityAllocator
from viabtc.workers import AdoptedListener, RoleWorkers, run_worker, shifted, tls_context, worker_arguments

#: A worker's program (imported, so its log events name this module, not ``__main__``).
WORKER_MAIN = "import sys; from viabtc.gateway.workers import main; sys.exit(main())"


def worker_config(config, index):
    """The configuration of worker ``index`` of the gateway ``config`` (see the module docstring)."""
    http_svr = config.http_svr
    if http_svr is not None:
        server = attrs.evolve(http_svr.server, binds=tuple(shifted(a, index) for a in http_svr.server.binds))
        http_svr = attrs.evolve(http_svr, server=server)
    return attrs.evolve(
        config,
        worker_id=config.worker_id + index,
        worker_num=1,
        queue=config.queue if index == 0 else f"{config.queue}.{index}",
        http_svr=http_svr,
        cli=None if config.cli is None else shifted(config.cli, index),
        monitor=None,
    )


def check_worker_addresses(config):
    """ConfigError when a worker's ``http_svr``/``cli`` address cannot be shifted."""
    for index in range(1, config.worker_num):
        worker_config(config, index)


class WorkerGatewayService(GatewayService):
    """
    Worker ``index`` of ``count``: a ``GatewayService`` whose Stratum
    listeners adopt the inherited listening sockets ``fds`` (one per
    ``svr.bind``) and whose extranonce1 values carry ``index``.
    """

    def __init__(self, config, reactor, index, count, fds, resend_timeout=10.0):
        self.index = index
        self._fds = fds
        super().__init__(config, reactor, resend_timeout)
        self.context.identities = IdentityAllocator(index=index, count=count)

    def listen_stratum(self, parent):
        for fd, address in zip(self._fds, self.config.svr.binds):
            AdoptedListener(fd, self.server, self.reactor, tls_context(address, self.reactor),
                            backlog=address.backlog, on_listening=self.server.hold).setServiceParent(parent)
        return []


class GatewayWorkers(RoleWorkers):
    """
    The parent of a ``worker_num`` gateway: the shared Stratum sockets, the
    ``monitor`` port, and the workers (``pool``, a ``WorkerPool``) running
    ``WORKER_MAIN``.  ``data`` is the configuration as
    read (a JSON object), ``config_path`` its file (relative paths in it are
    taken from that file's directory).
    """

    _log = Logger()

    def __init__(self, config, reactor, config_path, data=None, restart_delay=1.0):
        check_worker_addresses(config)
        super().__init__(config, reactor, config_path, role=ROLE, main=WORKER_MAIN, binds=config.svr.binds,
                         reloadable=RELOADABLE, data=data, restart_delay=restart_delay,
                         stop_timeout=config.stats_drain_timeout + 15.0)
        listen_monitor(self, config.monitor, reactor)

    def startService(self):
        super().startService()
        self._log.info("gateway {host}: {n} worker processes (worker_id {first}-{last}) on {binds}",
                       host=self.config.host, n=self.config.worker_num, first=self.config.worker_id,
                       last=self.config.worker_id + self.config.worker_num - 1,
                       binds=", ".join(a.text for a in self.config.svr.binds), role=ROLE)


def _worker_service(argv, reactor):
    """
    The ``WorkerGatewayService`` a worker's command line (``--config P
    --index I --fds F``) names, beside its SIGHUP reload.
    """
    args = worker_arguments(argv)
    config = GatewayConfig.from_reader(ConfigReader(args.data), os.path.dirname(args.path))
    index = args.index
    worker = WorkerGatewayService(worker_config(config, index), reactor, index, config.worker_num, list(args.fds))
    # The parent forwards its SIGHUP: this worker re-reads the file as its own.
    worker.reload = lambda new: reload_gateway(worker, new)
    top = service.MultiService()
    worker.setServiceParent(top)
    HangupReload(ROLE, args.path, lambda p: worker_config(GatewayConfig.from_file(p), index), worker,
                 reactor).setServiceParent(top)
    return top


def main(argv=None):
    """``WORKER_MAIN --config P --index I --fds F``: one worker, started by its parent."""
    argv = sys.argv[1:] if argv is None else argv
    return run_worker(lambda reactor: _worker_service(argv, reactor), ROLE)
