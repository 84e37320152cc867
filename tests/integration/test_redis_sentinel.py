"""
Redis behind Sentinel, for real: a master, a replica and three Sentinels
(``viabtc.devnet.sentinel``), the metawriter configured with the seed's
Sentinel-style ``redis`` block (``name``/``addr``).  The scripted statistics
stream of ``test_stats_pipeline`` goes in and the master is killed with
SIGKILL: right after a confirmed flush, or with a flush in flight.  The
Sentinels promote the replica, the metawriter follows it, and the new
master holds exactly the script's contents: nothing lost (a batch is let go
only once a replica holds it, ``WAIT``), nothing doubled (replay guards).
The connection the alertcenter uses (``viabtc.redis``) follows it too.
"""

import atexit
import os

from twisted.internet import reactor
from twisted.internet.task import deferLater

from viabtc.alertcenter.delivery import RedisDelivery
from viabtc.config import AlertBlock, ConfigReader, RedisBlock, ServerBlock, parse_address
from viabtc.devnet import free_port
from viabtc.devnet.sentinel import SentinelGroup
from viabtc.metawriter.config import MetaWriterConfig
from viabtc.redis import RedisConnection

from tests.integration.test_stats_pipeline import (
    M1,
    PART_A,
    PART_B1,
    PART_B2,
    Pipeline,
    ScriptedGateway,
    assert_contents,
    expected_contents,
    snapshot,
)
from tests.support import require_service, wait_for


def sentinel_block(group):
    """The seed's alertcenter form: ``name`` and the Sentinels' ``addr``."""
    return RedisBlock.from_reader(ConfigReader({"name": group.name, "addr": group.sentinel_addresses}, "redis"))


def promoted(group, old_port):
    """The server the Sentinels name master, once it is not ``old_port`` and says it is master."""
    try:
        server = group.server(group.master_port())
        if server.port != old_port and server.command("ROLE")[0] == "master":
            return server
    except (OSError, RuntimeError, StopIteration):
        pass
    return None


_GROUP = []


def shared_group():
    """
    One Sentinel deployment for the tests of this module (the Sentinels take
    seconds to find each other): started by the first, stopped when the
    test process exits; each test leaves it whole (a master and a replica).
    """
    if not _GROUP:
        group = require_service(lambda: SentinelGroup().start())
        atexit.register(group.stop)
        _GROUP.append(group)
    return _GROUP[0]


class SentinelFailoverTests(Pipeline):
    timeout = 120

    def setUp(self):
        super().setUp()
        self.group = shared_group()
        self.group.server(self.group.master_port()).command("FLUSHALL")

    def start_sentinel_writer(self):
        port = free_port()
        config = MetaWriterConfig(
            svr=ServerBlock((parse_address(f"tcp@127.0.0.1:{port}"), parse_address(f"udp@127.0.0.1:{port}")),
                            1 << 20),
            redis=sentinel_block(self.group), alert=AlertBlock("mw-1"), trust_file=self.trust_file,
            journal=os.path.join(self.dir, "journal"), redis_retry_interval=0.1, redis_timeout=3.0)
        self.assertEqual(config.redis.min_replicas, 1)
        return self.start_writer(config), port

    async def failover(self, old):
        """
        The replica promoted; then the old master's host comes back (empty,
        as a crashed host) and the Sentinels make it the new master's
        replica: with one replica in all, writes that must be on a replica
        (``min_replicas`` 1) wait for it, journaled.
        """
        new = await wait_for(lambda: promoted(self.group, old.port), timeout=60,
                             what="the Sentinels promoting the replica")
        # A host reboots in longer than the Sentinels take to agree, and its
        # Redis comes back as the new master's replica.
        await wait_for(lambda: self.group.agreed_master() == new.port, timeout=30, what="every Sentinel agreeing")
        self.group.restart(old, new)
        return new

    async def test_master_killed_after_a_confirmed_flush(self):
        writer, port = self.start_sentinel_writer()
        alerts = RedisConnection(sentinel_block(self.group), reactor, reply_timeout=3.0, max_delay=0.1,
                                 role="alertcenter")
        self.addCleanup(alerts.disconnect)
        await alerts.handler.rpush("alert:message", ["before"])
        gateway = ScriptedGateway(self, port)
        gateway.play(PART_A)
        gateway.end_minutes(M1 + 1)
        await gateway.sender.when_drained()
        await self.flushed(writer)
        # Confirmed, hence on the replica too: the master may go now.
        old = self.group.kill_master()
        gateway.play(PART_B1 + PART_B2)
        gateway.end_minutes()
        await gateway.sender.when_drained()
        self.clock.advance(60)
        new = await self.failover(old)
        await writer.writer.store.when_idle()
        # The alertcenter's connection moved as well.
        await alerts.handler.rpush("alert:message", ["after"])
        contents = snapshot(new)
        self.assertEqual(contents.pop("alert:message"), ["before", "after"])
        assert_contents(self, contents, expected_contents(), ordered=False)

    async def test_master_killed_with_a_flush_in_flight(self):
        writer, port = self.start_sentinel_writer()
        gateway = ScriptedGateway(self, port)
        gateway.play(PART_A + PART_B1 + PART_B2)
        gateway.end_minutes()
        await gateway.sender.when_drained()
        await writer.writer.store.when_idle()
        # The minute turns: the flush's batches leave for the master, which dies under them.
        self.clock.advance(60)
        await deferLater(reactor, 0.005, lambda: None)
        old = self.group.kill_master()
        new = await self.failover(old)
        await writer.writer.store.when_idle()
        assert_contents(self, snapshot(new), expected_contents(), ordered=False)

    async def test_a_demoted_master_that_stays_up_is_left(self):
        """
        ``SENTINEL FAILOVER``: the master is demoted to a replica and stays
        up, our connection to it too; the periodic look at the Sentinels
        moves it to the new master, and the alertcenter's delivery (an
        ``RPUSH`` counts once a replica holds it) loses no alert.
        """
        block = sentinel_block(self.group)
        alerts = RedisConnection(block, reactor, reply_timeout=3.0, max_delay=0.1, role="alertcenter")
        self.addCleanup(alerts.disconnect)
        delivery = RedisDelivery(alerts.handler, reactor, b"ac", retry_delay=0.2, min_replicas=block.min_replicas)
        self.addCleanup(delivery.stop)
        delivery.push(b"before")
        await wait_for(lambda: delivery.delivered == 1, what="the first alert")
        old = self.group.server(self.group.master_port())
        self.group.sentinel_command("SENTINEL", "FAILOVER", self.group.name)
        delivery.push(b"during")
        new = await wait_for(lambda: promoted(self.group, old.port), timeout=60, what="the failover")
        delivery.push(b"after")
        await wait_for(lambda: delivery.delivered == 3, timeout=30, what="every alert delivered")
        self.assertEqual(new.command("LRANGE", "alert:message", 0, -1), ["before", "during", "after"])
        await wait_for(lambda: self.group.agreed_master() == new.port, timeout=30, what="every Sentinel agreeing")
