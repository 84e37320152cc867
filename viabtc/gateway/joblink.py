# -*- test-case-name: tests.gateway.test_service -*-
"""
What the jobmaster link carries down to the gateway (ref §4.8): jobs
(cmd 1) and ban updates (cmd 3).

A body that cannot be used is logged and dropped; the link stays up and
the current job stays current.  One bad part of a usable body costs only
that part, logged: an aux entry or an optional key of ours in a job
(``Job.read_json``), an address or the limit in a ban update
(``parse_ban_update``); a job's required keys and a ban's ``op`` and ``ip``
list are the body itself.  When a link (re)connects the jobmaster sends its current
job as clean and its whole ban list (ref §3.3), so the gateway's bans are
cleared first: a ``del`` missed while the link was down, or a different
jobmaster after a failover, must not leave stale bans behind.

That clean job is, after a mere reconnect, the very job the miners are
working on.  Taking it as new (as the seed does, ref §4.8) would restart
every miner for nothing and, worse, empty its duplicate-share set, so that
a share submitted before the reconnect would be accepted and credited a
second time after it.  A job equal to the current one in everything but
its clean flag is therefore kept as it is (``repeats_current``).
"""

import time

import attrs
from twisted.logger import Logger
from zope.interface import implementer

from viabtc.rpc.bans import BadBanUpdate, parse_ban_update
from viabtc.rpc.codec import Command
from viabtc.rpc.interfaces import ILinkObserver
from viabtc.stratum.job import Job, JobError


def repeats_current(current, job):
    """
    True if ``job`` (a ``Job``) is ``current`` (the current ``PreparedJob``,
    or None) sent again: the same id and the same work, whatever its clean flag.
    """
    return current is not None and attrs.evolve(job, clean_jobs=current.job.clean_jobs) == current.job


@implementer(ILinkObserver)
class JobLink:
    """Observer of the jobmaster ``FailoverClient`` feeding a ``GatewayContext``."""

    _log = Logger()

    def __init__(self, context):
        self.context = context

    def on_connect(self, link):
        self.context.bans.clear()

    def on_disconnect(self, link):
        self._log.warn("jobmaster link down; miners keep the current job", role=self.context.role)

    def on_packet(self, link, packet):
        if packet.command == Command.UPDATE_JOB:
            self._job(packet.body)
        elif packet.command == Command.UPDATE_BAN:
            self._bans(packet.body)
        else:
            self._log.warn("jobmaster sent unexpected command {command}; dropped", command=packet.command,
                           role=self.context.role)

    def _job(self, body):
        started = time.perf_counter()
        try:
            job, dropped = Job.read_json(body)
            if dropped:
                self._log.warn("job {job_id} from the jobmaster used without its bad parts: {dropped}",
                               job_id=job.job_id, dropped="; ".join(dropped), role=self.context.role)
            if repeats_current(self.context.jobs.current, job):
                self._log.info("job {job_id} sent again (a link reconnect); miners keep it and its shares",
                               job_id=job.job_id, role=self.context.role)
                return
            prepared = self.context.add_job(job)
        except JobError as e:
            self._log.error("job from the jobmaster refused: {error}", error=str(e), role=self.context.role)
            return
        # How long the job took from its packet to the last miner's notify
        # in the kernel: the gateway's share of the time miners spend on
        # stale work after a new block (docs/benchmarks.md).
        elapsed_ms = (time.perf_counter() - started) * 1e3
        self._log.info(
            "job {job_id} at height {height} (clean {clean}) sent to {miners} miners in {elapsed_ms:.1f} ms",
            job_id=prepared.job_id,
            height=prepared.height,
            clean=prepared.clean,
            miners=len(self.context.server.sessions) if self.context.server is not None else 0,
            elapsed_ms=elapsed_ms,
            role=self.context.role,
        )

    def _bans(self, body):
        try:
            update = parse_ban_update(body)
        except BadBanUpdate as e:
            self._log.warn("ban update from the jobmaster dropped: {error}", error=str(e), role=self.context.role)
            return
        if update.dropped:
            self._log.warn("ban update from the jobmaster applied without its bad parts: {dropped}",
                           dropped="; ".join(update.dropped), role=self.context.role)
        closed = self.context.apply_bans(update)
        self._log.info("ban {op} {ips} (limit {limit} s); closed {closed} sessions", op=update.op,
                       ips=list(update.ips), limit=update.limit, closed=closed, role=self.context.role)
