# -*- test-case-name: tests.mineragent.test_workers -*-
"""
A mineragent of ``worker_num`` processes (ref §5.1): the seed's process
model on ``viabtc.workers``, as the gateway's (``viabtc.gateway.workers``).

The parent binds ``svr.bind`` once; it runs no Stratum server and no
upstream link.  Worker ``i`` is a whole ``MinerAgentService`` adopting the
parent's sockets: one agent towards the gateway, as each of the seed's
worker processes was, with

* its own upstream link (the same ``stratum_host``/``upstream`` failover
  list): the farm presents ``worker_num`` agent sessions to the pool;
* ``agent_id + i`` as its agent id.  The gateway keeps an agent's miners by
  ``(agent_id, miner_id)`` and its v2 verdicts by ``(agent_id, seq)``, and
  the agent id is in every coinbase of the agent layout (ref §4.4), so no two
  workers can share one: two would mix their miners' syncs and answer one
  worker's share with the other's verdict.  The gateway's extranonce1 of an
  agent's own session is in no coinbase, so it keeps nothing apart.  With no
  ``agent_id`` key the parent draws the base at random once (the seed drew
  one per worker process), and a worker restarted after a crash comes back
  with the agent id of the one it replaces;
* ``i`` in the top bits of its miners' extranonce1 values
  (``IdentityAllocator``), so no two miners of the farm share one either;
* its own v2 state: sequence numbers, shares queued or awaiting a verdict
  (a worker that dies loses what it held, its miners never heard a verdict
  for it, as with a one-process agent that dies), the miners' syncs;
* ``cli`` and ``metrics`` on their port + ``i`` (a unix path + ``.i``), as
  the seed's ``cli`` + i.

A worker gets the configuration the parent read at start-up on its
standard input (``viabtc.workers.RoleWorkers``) and the agent id drawn by
the parent on its command line.
"""

import sys
from functools import partial

import attrs
from twisted.application import service
from twisted.logger import Logger

from viabtc.config import ConfigError, ConfigReader
from viabtc.metrics import metrics_site
from viabtc.mineragent.config import MinerAgentConfig
from viabtc.mineragent.context import ROLE
from viabtc.mineragent.reload import RELOADABLE, keep_drawn_agent_id, reload_mineragent
from viabtc.mineragent.service import MinerAgentService
from viabtc.reload import HangupReload
from viabtc.service import listen_stream
from viabtc.stratum.context import IdentityAllocator
from viabtc.tap import metrics_binds
from viabtc.workers import AdoptedListener, RoleWorkers, run_worker, shifted, tls_context, worker_arguments

#: A worker's program (imported, so its log events name this module, not ``__main__``).
WORKER_MAIN = "import sys; from viabtc.mineragent.workers import main; sys.exit(main())"


def worker_config(config, index):
    """The configuration of worker ``index`` of the mineragent ``config`` (see the module docstring)."""
    return attrs.evolve(
        config,
        agent_id=config.agent_id + index,
        worker_num=1,
        cli=None if config.cli is None else shifted(config.cli, index),
    )


def worker_metrics(binds, index):
    """Worker ``index``'s ``/metrics`` addresses: ``binds`` (the ``metrics`` key's) moved by ``index``."""
    try:
        return tuple(shifted(address, index) for address in binds)
    except ConfigError as e:
        raise ConfigError("metrics", str(e)) from None


def check_worker_addresses(config, metrics=()):
    """ConfigError when a worker's ``cli`` or ``metrics`` (``metrics``: the key's addresses) cannot be moved."""
    for index in range(1, config.worker_num):
        worker_config(config, index)
        worker_metrics(metrics, index)


class WorkerMinerAgentService(MinerAgentService):
    """
    Worker ``index`` of ``count``: a ``MinerAgentService`` whose miners'
    listeners adopt the inherited listening sockets ``fds`` (one per
    ``svr.bind``) and whose extranonce1 values carry ``index``.
    """

    def __init__(self, config, reactor, index, count, fds):
        self.index = index
        self._fds = fds
        super().__init__(config, reactor, IdentityAllocator(index=index, count=count))

    def listen_miners(self, parent):
        for fd, address in zip(self._fds, self.config.svr.binds):
            AdoptedListener(fd, self.server, self.reactor, tls_context(address, self.reactor),
                            backlog=address.backlog).setServiceParent(parent)


class MinerAgentWorkers(RoleWorkers):
    """
    The parent of a ``worker_num`` mineragent: the shared miners' sockets
    and the workers (``pool``) running ``WORKER_MAIN``, each told the agent
    id drawn here.  ``data`` is the configuration as read (a JSON object),
    ``config_path`` its file, ``metrics`` the ``metrics`` key's addresses
    (served by the workers, not here).
    """

    _log = Logger()

    def __init__(self, config, reactor, config_path, data=None, metrics=(), restart_delay=1.0):
        check_worker_addresses(config, metrics)
        super().__init__(config, reactor, config_path, role=ROLE, main=WORKER_MAIN, binds=config.svr.binds,
                         reloadable=RELOADABLE, data=data, extra=("--agent-id", config.agent_id),
                         restart_delay=restart_delay)

    def reload(self, config):
        return super().reload(keep_drawn_agent_id(self.config, config))

    def startService(self):
        super().startService()
        first = self.config.agent_id
        self._log.info("mineragent: {n} worker processes (agent_id {first}-{last}), miners on {binds},"
                       " gateways {up}", n=self.config.worker_num, first=first,
                       last=first + self.config.worker_num - 1,
                       binds=", ".join(a.text for a in self.config.svr.binds),
                       up=", ".join(a.text for a in self.config.upstreams), role=ROLE)


def parent_service(options):
    """The ``build`` of ``make_role_service`` for a ``worker_num`` mineragent started with ``options``."""
    return partial(MinerAgentWorkers, config_path=options["config"], metrics=options.worker_metrics_binds)


def _worker_service(argv, reactor):
    """
    The ``WorkerMinerAgentService`` a worker's command line (``--config P
    --index I --fds F --agent-id A``) names, beside its ``/metrics`` and its
    SIGHUP reload.
    """
    args = worker_arguments(argv)
    reader = ConfigReader(args.data)
    config = MinerAgentConfig.from_reader(reader)
    if not config.agent_id_chosen:
        config = attrs.evolve(config, agent_id=int(args.extra["agent-id"]))
    index = args.index
    worker = WorkerMinerAgentService(worker_config(config, index), reactor, index, config.worker_num,
                                     list(args.fds))
    # The parent forwards its SIGHUP: this worker re-reads the file as its own.
    worker.reload = lambda new: reload_mineragent(worker, new)
    top = service.MultiService()
    worker.setServiceParent(top)
    for address in worker_metrics(metrics_binds(args.path, config, reader), index):
        listen_stream(top, address, metrics_site(worker.metrics, reactor), reactor)
    HangupReload(ROLE, args.path, lambda p: worker_config(MinerAgentConfig.from_file(p), index), worker,
                 reactor).setServiceParent(top)
    return top


def main(argv=None):
    """``WORKER_MAIN --config P --index I --fds F --agent-id A``: one worker, started by its parent."""
    argv = sys.argv[1:] if argv is None else argv
    return run_worker(lambda reactor: _worker_service(argv, reactor), ROLE)
