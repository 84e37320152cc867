# -*- test-case-name: tests.metawriter.test_writer -*-
"""
The metawriter's core: packets in, ACKs out, one Redis write per minute.

When a packet is ACKed (the choice the issue asks us to make).  A packet is
ACKed once it is durable in the write-ahead journal (one fsync per reactor
turn, ``viabtc.metawriter.journal``) and counted in the in-memory aggregate;
a retransmission of a packet already counted is dropped by body digest and
ACKed again.  A ``kill -9`` at any point therefore loses nothing that was
ACKed (the journal is replayed at start) and counts nothing twice (the
journal says which packets a flush already covered, and Redis writes carry
replay guards).  An unACKed packet is simply resent by its sender.

Flush timing follows the seed (ref §8.4): a 1 s tick flushes once the clock
enters a new minute (``flush_delay`` seconds later when configured, so that
the minute our gateways ship just after its end is in that flush, not the
next one); records stamped by our gateways keep their own minute
(``viabtc.stats.writer_agg``).  The writer's own metric ``meta_flush_cost``
(seconds of the past minute during which Redis writes were waiting) is
recorded as the seed does, host = ``alert.host``, coin ``job``.

Bodies are read record by record (``records.read_body``), as the seed's
writer applies them: an impossible value in one record (a seed gateway's
``goal = inf``) is dropped alone, and the packet is ACKed once its good
records are journaled; broken framing ends a body, keeping the records
before it.  Each such packet gives one log line naming the sending gateway
(the records' ``host``) and the keys.  Packets nothing can be read from (a
body shorter than its prefix, an unknown command) are logged and ACKed too:
resending the same bytes can never succeed, so holding the ACK would only
make the sender retry forever.  The brother link (ref §8.3): each fresh
packet's digest goes to the brother metawriter as cmd 104, and digests from
it are journaled like packets so that they too survive a restart.
"""

import hashlib

from twisted.logger import Logger

from viabtc.metawriter.journal import JournaledPacket
from viabtc.rpc.codec import Packet, PacketType
from viabtc.rpc.intake import TurnBatch
from viabtc.stats import records
from viabtc.stats.gateway_agg import minute_start

ACCEPTED_COMMANDS = frozenset((
    records.META_BLOCK, records.META_EVENT, records.META_SHARE, records.META_HASH,
    records.META_MONITOR_INT, records.META_MONITOR_FLOAT,
))
FLUSH_COST_KEY = "meta_flush_cost"
FLUSH_COST_COIN = "job"


class MetaWriter:
    """
    ``aggregator`` is a ``WriterAggregator``, ``journal`` a ``Journal``,
    ``store`` a ``BatchStore``; ``clock`` gives the time (``seconds``) and
    ``reactor`` runs the end-of-turn drain (``callLater``; default ``clock``);
    ``host`` is this writer's ``alert.host``; ``brother`` an ``ILink`` or None.
    Call ``recover`` once before feeding packets, ``tick`` every second,
    ``stop`` at shutdown.
    """

    _log = Logger()

    def __init__(self, aggregator, journal, store, clock, host, dup_timeout,
                 brother=None, reactor=None, role="metawriter", flush_delay=0.0):
        self.aggregator = aggregator
        self.journal = journal
        self.store = store
        self.clock = clock
        self.reactor = clock if reactor is None else reactor
        self.host = host
        self.dup_timeout = dup_timeout
        self.flush_delay = flush_delay
        self.brother = brother
        self._role = role
        self._batch = TurnBatch(self.reactor, self._take)
        self._digests = []
        self._unfiled_flush = []
        self._flush_cost = 0
        self._last_flush = minute_start(clock.seconds())
        self._stopped = False
        self.accepted = 0
        self.duplicates = 0
        self.dropped = 0
        #: impossible values dropped from records that were otherwise kept
        self.faults = 0
        #: bodies whose framing broke before their end
        self.torn = 0
        # Seconds (ticks) with batches waiting for Redis, since start (meta_flush_cost summed).
        self.flush_cost_total = 0

    # -- start ---------------------------------------------------------

    def recover(self):
        """Take back what the journal holds from a previous run (see ``journal``)."""
        return self.restore(self.journal.recover(self.clock.seconds(), self.dup_timeout))

    def restore(self, recovery):
        """
        Take back ``recovery``, what ``journal.recover`` read: the service
        reads the journal before it connects to Redis, so that a journal it
        cannot read stops start-up before anything else is under way.
        """
        dedupe = self.aggregator.dedupe
        for digest, seen_at in recovery.digests:
            dedupe.add(digest, seen_at)
        by_generation = {}
        for generation, batch in recovery.batches:
            by_generation.setdefault(generation, []).append(batch)
        for generation, batches in by_generation.items():
            self.store.add(batches, generation)
        for packet in recovery.packets:
            self._apply(packet.command, packet.body, packet.received_at, replay=True)
        if recovery.batches or recovery.packets:
            self._log.info("journal: {batches} Redis batches to re-apply, {packets} packets replayed",
                           batches=len(recovery.batches), packets=len(recovery.packets),
                           role=self._role)
        return recovery

    # -- packets ---------------------------------------------------------

    def packet_received(self, packet, ack, peer):
        """
        One packet from ``peer`` (for logs); ``ack()`` sends its REPLY.
        Packets are journaled and counted together at the end of the
        reactor turn, so a burst costs one fsync.
        """
        if packet.pkg_type == PacketType.REPLY:
            return
        if self._stopped:
            return
        if packet.command not in ACCEPTED_COMMANDS:
            self.dropped += 1
            self._log.warn("dropped command {command} from {peer}: not a statistics packet",
                           command=packet.command, peer=peer, role=self._role)
            ack()
            return
        self._batch.add((packet, ack, peer))

    def drain(self):
        """Journal, count and ACK every packet received this turn."""
        self._batch.drain()

    def _take(self, incoming):
        now = self.clock.seconds()
        dedupe = self.aggregator.dedupe
        fresh, repeats = [], []
        for item in incoming:
            packet = item[0]
            if packet.command != records.META_HASH and hashlib.sha256(packet.body).digest() in dedupe:
                repeats.append(item)
            else:
                fresh.append(item)
        for packet, ack, peer in repeats:
            self.duplicates += 1
            ack()
        if not fresh:
            return
        try:
            self.journal.append([JournaledPacket(now, p.command, p.body) for p, _, _ in fresh])
        except OSError as e:
            self._log.critical("journal write failed, {count} packets not acknowledged: {error}",
                               count=len(fresh), error=str(e), role=self._role)
            return
        for packet, ack, peer in fresh:
            self._apply(packet.command, packet.body, now, peer=peer)
            ack()

    def _apply(self, command, body, now, peer="journal", replay=False):
        """Count one journaled packet; never raises."""
        try:
            receipt = self.aggregator.receive(command, body, now)
        except records.RecordError as e:
            self.dropped += 1
            if not replay:
                self._log.warn("dropped malformed command {command} from {peer}: {error}",
                               command=command, peer=peer, error=str(e), role=self._role)
            return
        if receipt.duplicate:
            self.duplicates += 1
            return
        if not replay and (receipt.faults or receipt.error is not None):
            self._report(command, peer, receipt)
        self._digests.append((receipt.digest, now))
        if command == records.META_HASH:
            return
        self.accepted += 1
        if receipt.batch is not None:
            self.store.add([receipt.batch])
        if self.brother is not None and not replay:
            self.brother.send(Packet(records.META_HASH, receipt.digest, PacketType.PUSH))

    def _report(self, command, peer, receipt):
        """One warning per packet for what its records lost."""
        faults = receipt.faults
        self.faults += len(faults)
        if receipt.error is not None:
            self.torn += 1
        self._log.warn(
            "command {command} from {peer}: {faults} impossible values dropped, {count} records kept: {details}",
            command=command, peer=peer, faults=len(faults), count=receipt.count,
            host=faults[0].host if faults else None, keys=sorted({f.key for f in faults}),
            details=records.describe(faults, receipt.error), role=self._role)

    # -- time ------------------------------------------------------------

    def tick(self):
        """Every second: count flush cost, flush on a new minute, watch Redis."""
        now = self.clock.seconds()
        if len(self.store):
            self._flush_cost += 1
            self.flush_cost_total += 1
        if now - self._last_flush >= 60 + self.flush_delay:
            self._last_flush = minute_start(now)
            self.flush()
        self.store.check()

    def flush(self):
        """
        Hand the aggregate to Redis: journal the batches (with every
        unconfirmed block/event batch) before any is sent, then queue them.
        False when the journal could not be written (kept for the next try).
        """
        now = self.clock.seconds()
        self.drain()
        if self._flush_cost:
            self.aggregator.add(records.MonitorIntRecord(
                FLUSH_COST_KEY, self.host, FLUSH_COST_COIN, self._flush_cost))
            self._flush_cost = 0
        batches = self._unfiled_flush + self.aggregator.flush(now)
        try:
            generation = self.journal.cut(self.store.unfiled() + batches, self._digests, now)
        except OSError as e:
            # The packets stay in the open generation's journal, so these
            # batches must not reach Redis before a cut files them: after a
            # crash the packets are counted again from the journal.
            self._unfiled_flush = batches
            self._log.critical("journal cut failed, {count} batches held back: {error}",
                               count=len(batches), error=str(e), role=self._role)
            return False
        self._unfiled_flush = []
        self._digests = []
        try:
            self.journal.expire_digests(now, self.dup_timeout)
        except OSError as e:
            self._log.warn("journal: cannot expire digest files: {error}", error=str(e), role=self._role)
        self.store.file_unfiled(generation)
        self.store.add(batches, generation)
        if batches:
            self._log.info("flushed {count} Redis batches ({commands} commands)",
                           count=len(batches), commands=sum(len(b.commands) for b in batches),
                           role=self._role)
        return True

    def stop(self):
        """Flush once more and stop taking packets; returns the flush result."""
        result = self.flush()
        self._stopped = True
        return result
