# -*- test-case-name: tests.poolbench.test_service -*-
"""
One watched pool: a Stratum session kept alive as a miner would, which only
listens (ref §7: subscribe, authorize, read ``mining.notify``; never submit).

The session itself is ``viabtc.stratum.client`` (handshake, bad lines
logged and dropped, ``client.reconnect``); this adds what watching needs:
a quick reconnect (0.1 s, backing off to ``MAX_RETRY_DELAY`` while the pool
stays down), DNS on every connect (``HostnameEndpoint`` resolves each
time), and a pool that sent no job for ``silence`` seconds is dropped and
reconnected, since a session that silently stopped getting jobs looks
connected forever.
"""

import random

from twisted.application.internet import backoffPolicy
from twisted.logger import Logger

from viabtc.stratum.client import StratumAddress, StratumClientHandler, StratumClientService

#: The seed reconnects after 0.1 s; we start there and back off to this.
FIRST_RETRY_DELAY = 0.1
MAX_RETRY_DELAY = 10.0

#: A pool that sent no job for this long is reconnected (ref §7).
SILENCE_TIMEOUT = 600.0


def _jitter():
    """Up to one first delay more, not backoffPolicy's default of up to a second."""
    return random.uniform(0, FIRST_RETRY_DELAY)


class PoolWatcher(StratumClientHandler):
    """
    Watches the pool of ``entry`` (a ``PoolEntry``): ``on_job(name, job)``
    for every ``mining.notify`` and ``on_connection(name, connected)`` when
    the session is authorized or lost.  ``service`` is the
    ``StratumClientService`` to start.
    """

    _log = Logger()

    def __init__(self, entry, reactor, on_job, on_connection, *, silence=SILENCE_TIMEOUT):
        self.entry = entry
        self.reactor = reactor
        self.on_job = on_job
        self.on_connection = on_connection
        self.silence = silence
        self.session = None
        self.last_heard = None
        self.service = StratumClientService(
            reactor, StratumAddress(entry.host, entry.port), self, entry.user, entry.password,
            retry_policy=backoffPolicy(initialDelay=FIRST_RETRY_DELAY, maxDelay=MAX_RETRY_DELAY,
                                       jitter=_jitter),
        )

    @property
    def peer(self):
        return f"{self.entry.host}:{self.entry.port}"

    def sessionStarted(self, session):
        self.session = session
        self.last_heard = self.reactor.seconds()
        self._log.info("watching pool {pool} as {user}", pool=self.entry.name, user=self.entry.user,
                       peer=session.peer, role="poolbench")
        self.on_connection(self.entry.name, True)

    def sessionEnded(self, session, reason):
        if session is not self.session:
            return
        self.session = None
        self._log.info("pool {pool} disconnected: {reason}", pool=self.entry.name,
                       reason=reason.getErrorMessage(), peer=session.peer, role="poolbench")
        self.on_connection(self.entry.name, False)

    def jobReceived(self, job):
        self.last_heard = self.reactor.seconds()
        self.on_job(self.entry.name, job)

    def check_silence(self, now):
        """Drop the session when the pool sent no job for ``silence`` seconds."""
        session = self.session
        if session is None or now - self.last_heard <= self.silence:
            return
        self._log.warn("pool {pool} sent no job for {seconds:.0f} s; reconnecting",
                       pool=self.entry.name, seconds=now - self.last_heard, peer=session.peer,
                       role="poolbench")
        self.last_heard = now
        session.transport.loseConnection()
