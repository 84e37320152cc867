# -*- test-case-name: tests.gateway.test_stats -*-
"""
The gateway's statistics (ref §4.9, §4.10) on their way to the writer.

Shares, rejects and monitor counters go into the exact-minute
``MinuteAggregator`` with the time they happened; once a second every
completed minute is packed (cmds 102, 105, 106, each body stamped with its
minute) and handed to the ``ReliableSender``, which journals it and resends
until the writer acknowledges.  Found blocks (cmd 100) and worker events
(cmd 101) are sent at once: at the end of the reactor turn they happened
in, with whatever else that turn produced, so that 10,000 miners dropping
together (a farm's uplink) cost one journal fsync, not 10,000 in a row
while block candidates wait behind them.  ``connections`` is sampled once
per minute, so the Redis value is a connection count, not a sum of samples
(ref §12.26).

Pow on the wire is an integer (the seed's varint) while our difficulties
are floats (a CPU miner on regtest works at 0.001): the aggregator carries
a worker's fractions from minute to minute (``viabtc.stats.gateway_agg``).
"""

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from viabtc.rpc.codec import Packet, PacketType
from viabtc.rpc.intake import TurnBatch
from viabtc.stats import records
from viabtc.stats.gateway_agg import minute_start

#: Monitor keys the gateway adds beside the aggregator's share/pow/reject/goal.
CONNECTIONS = "connections"
BLOCK = "block"
BLOCK_AUX = "block_aux"


class GatewayStats:
    """
    Feeds ``aggregator`` (a ``MinuteAggregator``) and ships what it yields
    through ``sender`` (a ``ReliableSender``).  ``connections`` is a
    callable giving the current number of miner connections.
    """

    _log = Logger()

    def __init__(self, aggregator, sender, clock, connections=lambda: 0, role="gateway", interval=1.0):
        self.aggregator = aggregator
        self._sender = sender
        self._clock = clock
        self._connections = connections
        self._role = role
        #: ``share(user, worker, difficulty, goal, now)``: an accepted share
        #: credited at ``difficulty`` worth ``goal`` of a block, straight
        #: into the aggregator (a call layer less on every share).
        self.share = aggregator.accepted
        self._sampled_minute = None
        self._at_once = TurnBatch(clock, self._send_now)
        self._timer = LoopingCall(self.tick)
        self._timer.clock = clock
        self._interval = interval

    # -- lifecycle ------------------------------------------------------------

    def start(self):
        self._timer.start(self._interval, now=True).addErrback(
            lambda f: self._log.failure("statistics timer stopped", f, role=self._role)
        )

    def stop(self):
        """Stop the timer and send every minute held, the current one included."""
        if self._timer.running:
            self._timer.stop()
        self._at_once.drain()
        self._sample(self._clock.seconds())
        self._ship(self.aggregator.flush_all())

    def tick(self):
        now = self._clock.seconds()
        self._sample(now)
        self._ship(self.aggregator.flush(now))

    def _sample(self, now):
        minute = minute_start(now)
        if minute != self._sampled_minute:
            self._sampled_minute = minute
            self.aggregator.monitor(CONNECTIONS, self._connections(), now)

    def _ship(self, minutes):
        for minute in minutes:
            packets = [Packet(command, body, PacketType.REQUEST) for command, body in minute.bodies()]
            if packets and not self._sender.send_batch(packets):
                self._log.critical(
                    "statistics of minute {minute} lost: the stats journal refused them",
                    minute=minute.minute,
                    role=self._role,
                )

    # -- inputs ---------------------------------------------------------------

    def reject(self, user, worker, code, now):
        """A rejected share; counted per user and worker only when the session named one."""
        if user:
            self.aggregator.rejected(user, worker or user, int(code), now)
        else:
            self.aggregator.monitor("reject", 1, now)
            self.aggregator.monitor("reject_%d" % code, 1, now)

    def count(self, key, n, now):
        """Add ``n`` to monitor counter ``key`` (the seed's monitor keys)."""
        self.aggregator.monitor(key, n, now)

    def event(self, user, worker, peer, event, now):
        """A worker event ("connected", "disconnected"), sent at once (cmd 101)."""
        record = records.EventRecord(user, worker, self.aggregator.coin, peer, event)
        self._at_once.add((records.META_EVENT, record, now))

    def block(self, user, worker, name, block_hash, now, aux=False):
        """A found block (cmd 100, sent at once) and its monitor count."""
        self.aggregator.monitor(BLOCK_AUX if aux else BLOCK, 1, now)
        self._at_once.add((records.META_BLOCK, records.BlockRecord(user, worker, name, block_hash), now))

    def _send_now(self, items):
        """
        One turn's events and blocks: as few packets as their records fit (a
        storm's thousands of ``connected`` events in a few dozen cmd 101
        bodies, not one packet and one acknowledgement each), one journal
        write.  The seed's gateway sent one record a packet, but every
        body's layout repeats to its end (ref §4.9), so a C metawriter reads
        several as it reads one.
        """
        groups = {}
        for command, record, now in items:
            groups.setdefault((command, minute_start(now)), []).append(record)
        packets = []
        for (command, minute), group in groups.items():
            packets.extend(Packet(command, body, PacketType.REQUEST)
                           for body in self._bodies(command, group, minute))
        if packets and not self._sender.send_batch(packets):
            self._log.critical("{count} statistics packets (events, blocks) lost: the stats journal"
                               " refused them", count=len(packets), role=self._role)

    def _bodies(self, command, group, minute):
        """The bodies of ``group``; a record that cannot be encoded is logged and left out, alone."""

        def skip(record, error):
            self._log.error("statistics record {record!r} not sent: {error}", record=record, error=str(error),
                            role=self._role)

        return records.encode_bodies(command, group, minute=minute, skip=skip)
