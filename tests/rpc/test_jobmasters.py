"""The jobmaster list: static UDP addresses from the config, kept with the fetched ones in the sender."""

import json

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase
from twisted.web import server

from tests.rpc.test_addresslist import FakeListService
from viabtc.config import ConfigError, ConfigReader
from viabtc.rpc.client import DatagramSender
from viabtc.rpc.jobmasters import jobmaster_list, static_jobmasters


class StaticTests(TestCase):
    def test_udp_ip_addresses(self):
        reader = ConfigReader({"jobmaster": ["udp@10.0.0.1:6000", "10.0.0.2:6001"]})
        self.assertEqual([a.sockaddr for a in static_jobmasters(reader)],
                         [("10.0.0.1", 6000), ("10.0.0.2", 6001)])
        self.assertEqual(static_jobmasters(ConfigReader({})), ())

    def test_errors_name_the_entry(self):
        for entry in ("tcp@10.0.0.1:6000", "udp@10.0.0.1:0", "udp:host=jm.example:port=6000"):
            e = self.assertRaises(ConfigError, static_jobmasters, ConfigReader({"jobmaster": [entry]}))
            self.assertIn("jobmaster[0]", str(e))


class SenderTests(TestCase):
    """The list keeps the sender the hints leave by addressed: at start and after a fetch."""

    def setUp(self):
        self.service = FakeListService("secret-token")
        port = reactor.listenTCP(0, server.Site(self.service), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.url = f"http://127.0.0.1:{port.getHost().port}/jobmaster"
        self.sender = DatagramSender((), max_size=1024, reactor=reactor, role="test")

    @defer.inlineCallbacks
    def test_sender_follows_the_list(self):
        self.service.reply = {"error": {"message": "ok"}, "result": ["10.0.0.2:6000", "10.0.0.1:6000"]}
        static = static_jobmasters(ConfigReader({"jobmaster": ["udp@10.0.0.1:6000"]}))
        jobmasters = jobmaster_list(self.sender, reactor, static=static, url=self.url,
                                    auth="secret-token", interval=3600, role="test")
        jobmasters.startService()
        self.addCleanup(jobmasters.stopService)
        self.assertEqual(self.sender.addresses[:1], (("10.0.0.1", 6000),))
        yield jobmasters.refresh()
        self.assertEqual(self.sender.addresses, (("10.0.0.1", 6000), ("10.0.0.2", 6000)))
        self.service.reply = json.dumps({"error": {"message": "ok"}, "result": []}).encode()
        yield jobmasters.refresh()
        self.assertEqual(self.sender.addresses, (("10.0.0.1", 6000), ("10.0.0.2", 6000)),
                         "an empty jobmaster list is a broken service: the last list is kept")
