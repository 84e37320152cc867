# -*- test-case-name: tests.alertcenter.test_service -*-
"""
The alertcenter service: listeners from ``svr.bind`` (TCP lines and UDP
datagrams), the rate limiter and the Redis delivery, wired together.
"""

import txredisapi
from twisted.application import internet, service
from twisted.internet.endpoints import HostnameEndpoint
from twisted.logger import Logger

from viabtc.alertcenter.delivery import RedisDelivery
from viabtc.alertcenter.limiter import AlertLimiter
from viabtc.alertcenter.protocol import AlertDatagramProtocol, AlertLineFactory, split_host

ROLE = "alertcenter"

# Seconds between summary checks (suppressed counts) of the limiter.
SUMMARY_INTERVAL = 1.0
# Longest wait between Redis reconnection attempts.
RECONNECT_MAX_DELAY = 5.0

_log = Logger(namespace="viabtc.alertcenter.service")


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


class _DatagramService(service.Service):
    """Listens for datagrams on one ``udp@``/``dgram@`` address."""

    def __init__(self, address, protocol, reactor, max_packet_size):
        self.address = address
        self.protocol = protocol
        self.reactor = reactor
        self.max_packet_size = max_packet_size
        self.port = None

    def privilegedStartService(self):
        # Listen here so a bind failure stops twistd at start-up.
        self.port = self.address.listen_udp(self.reactor, self.protocol, self.max_packet_size)
        super().privilegedStartService()

    def stopService(self):
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()


def connect_redis(block, reactor, reply_timeout):
    """
    One lazy, reconnecting txredisapi connection to ``block`` (a
    ``RedisBlock``); commands issued while Redis is down wait for it.
    Returns ``(handler, factory)``; ``factory.disconnect()`` closes it.
    """
    factory = txredisapi.RedisFactory(
        "%s:%d" % (block.host, block.port), block.db, 1, isLazy=True,
        password=block.password, replyTimeout=reply_timeout, convertNumbers=False,
    )
    factory.maxDelay = RECONNECT_MAX_DELAY
    # Fails only when Redis refuses our AUTH/SELECT (a configuration error).
    factory.deferred.addErrback(
        lambda f: _log.critical("redis {host}:{port} refused the connection: {error}",
                                host=block.host, port=block.port, error=f.getErrorMessage()))
    factory.startConnecting(HostnameEndpoint(reactor, block.host, block.port, timeout=5))
    return factory.handler, factory


class AlertCenterService(service.MultiService):
    """The whole role for one ``AlertCenterConfig``."""

    _log = Logger()

    def __init__(self, config, reactor):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self._redis_factory = None
        self.center = None
        # The RoleLogging handle when started through tap.makeService.
        self.role_logging = None

    def privilegedStartService(self):
        config, reactor = self.config, self.reactor
        limit = config.limit
        redis, self._redis_factory = connect_redis(config.redis, reactor, limit.redis_timeout)
        delivery = RedisDelivery(redis, reactor, config.identity.encode("utf-8"), limit=limit.queue)
        limiter = AlertLimiter(reactor, limit.rate, limit.burst, limit.total_rate, limit.total_burst,
                               limit.similar_prefix, limit.max_groups)
        self.center = AlertCenter(limiter, delivery)
        max_line = config.svr.max_pkg_size
        for address in config.svr.stream_binds:
            listener = internet.StreamServerEndpointService(
                address.server_endpoint(reactor), AlertLineFactory(self.center, max_line))
            listener._raiseSynchronously = True
            listener.setServiceParent(self)
        for address in config.svr.datagram_binds:
            _DatagramService(address, AlertDatagramProtocol(self.center), reactor,
                             max_line).setServiceParent(self)
        timer = internet.TimerService(SUMMARY_INTERVAL, self.center.summarize)
        timer.clock = reactor
        timer.setServiceParent(self)
        self._log.info("alertcenter: pushing alerts to redis {host}:{port}",
                       host=config.redis.host, port=config.redis.port)
        super().privilegedStartService()

    def stopService(self):
        d = super().stopService()
        lost = self.center.delivery.stop()
        if lost:
            self._log.warn("alertcenter stopping with {n} alerts not delivered to Redis", n=lost)

        def disconnect(_):
            return self._redis_factory.disconnect()
        return d.addCallback(disconnect)
