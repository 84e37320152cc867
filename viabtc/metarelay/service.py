# -*- test-case-name: tests.metarelay.test_service -*-
"""
The metarelay service: ``svr`` listeners (TCP and UDP, both behind the
``trust`` list), the ``Relay`` intake, the ``ReliableSender`` with its
durable queue, the link to the writer, and the ``monitor`` health port.

Graceful stop: this turn's packets are journaled (and ACKed), the
listeners close, the queue is closed; everything not yet ACKed by the
writer is resent after the next start.
"""

from twisted.application import service
from twisted.logger import Logger

from viabtc.metarelay.relay import Relay
from viabtc.rpc.intake import DatagramIntake, StreamIntake
from viabtc.rpc.protocol import TrustedHosts
from viabtc.rpc.reliable import ReliableSender
from viabtc.service import client_link, listen_monitor, listen_rpc

ROLE = "metarelay"


class MetaRelayService(service.MultiService):
    """The whole role for one ``MetaRelayConfig``."""

    _log = Logger()

    def __init__(self, config, reactor, resend_timeout=10.0):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.resend_timeout = resend_timeout
        self.relay = None
        self.sender = None
        # The RoleLogging handle when started through tap.makeService.
        self.role_logging = None

    def privilegedStartService(self):
        config, reactor = self.config, self.reactor
        secret = None if config.secret is None else config.secret.value
        link = client_link(config.writer, reactor, secret, ROLE)
        link.setServiceParent(self)
        self.sender = ReliableSender(link, config.queue, reactor=reactor, role=ROLE,
                                     resend_timeout=self.resend_timeout)
        self.sender.setServiceParent(self)
        pending = self.sender.pending_count()
        if pending:
            self._log.info("metarelay: {count} queued packets from before the restart", count=pending, role=ROLE)
        self.relay = Relay(self.sender, reactor, role=ROLE)
        listen_rpc(self, config.svr, reactor, StreamIntake(self.relay), DatagramIntake(self.relay),
                   secret=secret, trust=TrustedHosts(config.trust), role=ROLE)
        listen_monitor(self, config.monitor, reactor)
        self._log.info("metarelay: forwarding to {writer}, queue {queue}",
                       writer=", ".join(a.text for a in config.writer.addrs), queue=config.queue, role=ROLE)
        super().privilegedStartService()

    def stopService(self):
        self.relay.drain()
        return super().stopService()
