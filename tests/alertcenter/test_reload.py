"""SIGHUP's part in the alertcenter: new rate limits and queue size."""

import attrs
from twisted.internet import reactor
from twisted.trial import unittest

from tests.support import redis_server
from viabtc.alertcenter.config import AlertCenterConfig, LimitBlock
from viabtc.alertcenter.reload import reload_alertcenter
from viabtc.alertcenter.service import AlertCenterService
from viabtc.config import RedisBlock, ServerBlock, parse_address
from viabtc.devnet import free_port
from viabtc.reload import ReloadReport


class AlertCenterReloadTests(unittest.TestCase):
    def test_limits_replaced(self):
        server = redis_server(self)
        config = AlertCenterConfig(svr=ServerBlock((parse_address("tcp@127.0.0.1:%d" % free_port()),), 10240),
                                   redis=RedisBlock("127.0.0.1", server.port))
        service = AlertCenterService(config, reactor)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        new = attrs.evolve(config, limit=LimitBlock(rate=1.0, burst=2, queue=5))
        self.assertEqual(reload_alertcenter(service, new), ReloadReport(("limit",), ()))
        self.assertEqual((service.center.limiter.rate, service.center.delivery.limit), (1.0, 5))
        self.assertEqual(service.config.limit, new.limit)
