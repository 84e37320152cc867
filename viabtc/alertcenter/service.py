# -*- test-case-name: tests.alertcenter.test_service -*-
"""
The alertcenter service: listeners from ``svr.bind`` (TCP lines and UDP
datagrams), the rate limiter and the Redis delivery, wired together.
"""

from twisted.application import internet, service
from twisted.logger import Logger

from viabtc.alertcenter.delivery import RedisDelivery
from viabtc.alertcenter.limiter import AlertLimiter
from viabtc.alertcenter.protocol import AlertDatagramProtocol, AlertLineFactory, split_host
from viabtc.redis import RedisConnection
from viabtc.service import listen_block

ROLE = "alertcenter"

# Seconds between summary checks (suppressed counts) of the limiter.
SUMMARY_INTERVAL = 1.0
# Longest wait between Redis reconnection attempts.
RECONNECT_MAX_DELAY = 5.0


class AlertCenter:
    """Takes each accepted frame's text through the limiter into delivery."""

    _log = Logger()

    def __init__(self, limiter, delivery):
        self.limiter = limiter
        self.delivery = delivery
        self.received_count = 0

    def received(self, text, peer):
        """One alert text (``b"<host>: <message>"``) from ``peer``."""
        self.received_count += 1
        host, message = split_host(text)
        if self.limiter.offer(host, message):
            self._log.info("alert from {peer}: {text}", peer=peer, text=text.decode("utf-8", "replace"))
            self.delivery.push(text)

    def summarize(self):
        """Push the limiter's due summaries (driven by a timer)."""
        for entry in self.limiter.summaries(self.delivery.identity):
            self._log.info("alert summary: {text}", text=entry.decode("utf-8", "replace"))
            self.delivery.push(entry)


class AlertCenterService(service.MultiService):
    """The whole role for one ``AlertCenterConfig``."""

    _log = Logger()

    def __init__(self, config, reactor):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.redis = None
        self.center = None
        # The RoleLogging handle when started through tap.makeService.
        self.role_logging = None

    def privilegedStartService(self):
        config, reactor = self.config, self.reactor
        limit = config.limit
        self.redis = RedisConnection(config.redis, reactor, reply_timeout=limit.redis_timeout,
                                     max_delay=RECONNECT_MAX_DELAY, role=ROLE)
        delivery = RedisDelivery(self.redis.handler, reactor, config.identity.encode("utf-8"), limit=limit.queue,
                                 min_replicas=config.redis.min_replicas)
        limiter = AlertLimiter(reactor, limit.rate, limit.burst, limit.total_rate, limit.total_burst,
                               limit.similar_prefix, limit.max_groups)
        self.center = AlertCenter(limiter, delivery)
        listen_block(self, config.svr, reactor,
                     lambda: AlertLineFactory(self.center, config.svr.max_pkg_size),
                     lambda: AlertDatagramProtocol(self.center))
        timer = internet.TimerService(SUMMARY_INTERVAL, self.center.summarize)
        timer.clock = reactor
        timer.setServiceParent(self)
        self._log.info("alertcenter: pushing alerts to redis {where}", where=config.redis.text,
                       host=config.redis.host, port=config.redis.port)
        super().privilegedStartService()

    def stopService(self):
        d = super().stopService()
        lost = self.center.delivery.stop()
        if lost:
            self._log.warn("alertcenter stopping with {n} alerts not delivered to Redis", n=lost)
        return d.addCallback(lambda _: self.redis.disconnect())
