"""SIGHUP's part in the metarelay (the trust list of its listeners) and its /metrics source."""

import os
import socket

import attrs
from twisted.internet import reactor
from twisted.trial import unittest

from viabtc.config import RPCClientBlock, ServerBlock, parse_address
from viabtc.devnet import free_port
from viabtc.metarelay.config import MetaRelayConfig
from viabtc.metarelay.metrics import metarelay_metrics
from viabtc.metarelay.reload import reload_metarelay
from viabtc.metarelay.service import MetaRelayService
from viabtc.metrics import RoleMetrics
from viabtc.reload import ReloadReport


class MetaRelayReloadTests(unittest.TestCase):
    def test_trust_list_replaced_on_every_listener(self):
        config = MetaRelayConfig(
            svr=ServerBlock((parse_address("tcp@127.0.0.1:%d" % free_port()),
                             parse_address("udp@127.0.0.1:%d" % free_port(kind=socket.SOCK_DGRAM))), 1 << 20),
            writer=RPCClientBlock("writer", (parse_address("tcp@127.0.0.1:%d" % free_port()),), 1 << 20),
            queue=os.path.abspath(self.mktemp()), trust=("10.0.0.1",))
        relay = MetaRelayService(config, reactor)
        relay.privilegedStartService()
        relay.startService()
        self.addCleanup(relay.stopService)
        listeners = [getattr(c, "factory", None) or getattr(c, "protocol", None) for c in relay]
        listeners = [x for x in listeners if hasattr(x, "trust")]
        self.assertEqual(len(listeners), 2)
        self.assertFalse(any(x.trust("127.0.0.1") for x in listeners))

        report = reload_metarelay(relay, attrs.evolve(config, trust=("127.0.0.0/8",), queue="/elsewhere"))
        self.assertEqual(report, ReloadReport(("trust",), ("queue",)))
        self.assertTrue(all(x.trust("127.0.0.1") and not x.trust("10.0.0.1") for x in listeners))
        self.assertEqual(relay.config.queue, config.queue)

        # Its /metrics source: the writer link's queue.
        metrics = RoleMetrics("metarelay")
        metrics.add(metarelay_metrics(relay))
        text = metrics.render().decode()
        self.assertIn('viabtc_link_queue_packets{link="writer"} 0.0', text)
