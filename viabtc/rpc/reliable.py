# -*- test-case-name: tests.rpc.test_reliable -*-
"""
Acknowledged delivery of packets over an RPC link (ref §2.5, done better).

The stats path (gateway -> [metarelay ->] metawriter) must lose nothing.
As in the seed, each packet goes out under a fresh ``sequence``; the
receiver answers with a REPLY carrying the same command and sequence; a
packet not acknowledged within ``resend_timeout`` is sent again with the
*same body* (the receiver de-duplicates by body hash, ref §8.3) under a new
sequence; at most ``window`` packets are in flight.

Unlike the seed, every packet is journaled in a ``FileQueue`` before it is
first sent and only forgotten once acknowledged, so a restart resends what
was in flight as well as what waited beyond the window (ref §12.26).  A
crash between an ACK and its journal entry only causes a duplicate, which
the receiver drops.  Sequences start at a random value so late ACKs for a
previous run cannot acknowledge this run's packets.
"""

import secrets

import attrs
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from viabtc.rpc.codec import Packet, PacketType, ProtocolError, decode_datagram, encode
from viabtc.rpc.filequeue import FileQueue, QueueFull, RecordId
from viabtc.rpc.interfaces import ILinkObserver
from viabtc.rpc.protocol import resolve_reactor


@attrs.define
class _Flight:
    """A packet on the wire awaiting its ACK, and where it is journaled."""

    record: RecordId
    packet: Packet
    sent_at: float


@implementer(ILinkObserver)
class ReliableSender(Service):
    """
    Sends packets over ``link`` (a ``FailoverClient`` or ``DatagramSender``)
    until each is acknowledged, journaling them in ``directory``.

    The journal is opened (and a crash's torn tail repaired) in the
    constructor; ``startService`` begins sending what it holds.
    """

    _log = Logger()

    def __init__(
        self,
        link,
        directory,
        *,
        window=1000,
        resend_timeout=10.0,
        check_interval=1.0,
        reactor=None,
        role="rpc",
        segment_size=8 << 20,
        max_bytes=1 << 30,
    ):
        self._link = link
        self._queue = FileQueue(directory, segment_size=segment_size, max_bytes=max_bytes)
        self._window = window
        self._resend_timeout = resend_timeout
        self._check_interval = check_interval
        self._clock = resolve_reactor(reactor)
        self._role = role
        self._in_flight = {}
        self._sequence = secrets.randbelow(0xFFFFFFFF) + 1
        self._acked = []
        self._ack_flush = None
        self._drain_waiters = []
        self._timer = None
        self._closed = False

    # -- public --------------------------------------------------------

    def send(self, packet):
        """Journal ``packet`` and send it when the window allows; see ``send_batch``."""
        return self.send_batch([packet])

    def send_batch(self, packets):
        """
        Journal ``packets`` with one fsync and send them as the window allows.
        True once they are safe on disk; False (logged) when the journal is
        full or the disk failed, in which case none of them was taken.
        Sequence and ext of the given packets are ignored.  After
        ``stopService`` the journal is closed and packets are refused.
        """
        if self._closed:
            self._log.error(
                "refused {count} packets: sender stopped", count=len(packets), role=self._role
            )
            return False
        payloads = [
            encode(attrs.evolve(p, sequence=0, ext=b"")) for p in packets
        ]
        try:
            self._queue.append(payloads)
        except (QueueFull, OSError) as e:
            self._log.critical(
                "could not journal {count} packets: {error}",
                count=len(payloads),
                error=e,
                role=self._role,
            )
            return False
        if self.running:
            self._fill()
        return True

    def pending_count(self):
        """Packets handed to ``send`` and not yet acknowledged."""
        return len(self._queue) - len(self._acked)

    @property
    def in_flight_count(self):
        """Packets sent and awaiting an ACK."""
        return len(self._in_flight)

    def when_drained(self):
        """A Deferred firing once every packet is acknowledged (and journaled so)."""
        if len(self._queue) == 0:
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._drain_waiters.append(waiter)
        return waiter

    def startService(self):
        super().startService()
        self._link.add_observer(self)
        self._timer = LoopingCall(self._tick)
        self._timer.clock = self._clock
        self._timer.start(self._check_interval, now=True)

    def stopService(self):
        super().stopService()
        self._timer.stop()
        self._link.remove_observer(self)
        self._flushAcks()
        self._queue.close()
        self._closed = True

    # -- ILinkObserver -------------------------------------------------

    def on_connect(self, link):
        """Send everything in flight again at once: it may have died with the old link."""
        for sequence in list(self._in_flight):
            self._retransmit(sequence)

    def on_packet(self, link, packet):
        if packet.pkg_type != PacketType.REPLY:
            return
        flight = self._in_flight.get(packet.sequence)
        if flight is None or flight.packet.command != packet.command:
            return
        del self._in_flight[packet.sequence]
        self._ack(flight.record)
        self._fill()

    def on_disconnect(self, link):
        """Nothing to do: unacknowledged packets are resent on reconnect."""

    # -- internals -----------------------------------------------------

    def _nextSequence(self):
        sequence = self._sequence
        while sequence in self._in_flight:
            sequence = sequence % 0xFFFFFFFF + 1
        self._sequence = sequence % 0xFFFFFFFF + 1
        return sequence

    def _transmit(self, record, packet):
        sequence = self._nextSequence()
        packet = attrs.evolve(packet, sequence=sequence)
        self._in_flight[sequence] = _Flight(record, packet, self._clock.seconds())
        self._link.send(packet)

    def _retransmit(self, sequence):
        flight = self._in_flight.pop(sequence)
        self._transmit(flight.record, flight.packet)

    def _fill(self):
        room = self._window - len(self._in_flight)
        if room <= 0 or not self._queue.unread:
            return
        for record, payload in self._queue.read(room):
            try:
                packet = decode_datagram(payload, len(payload))
            except ProtocolError as e:
                self._log.critical(
                    "dropping unreadable journal record {record}: {reason}",
                    record=record,
                    reason=e.reason,
                    role=self._role,
                )
                self._ack(record)
                continue
            self._transmit(record, packet)

    def _tick(self):
        deadline = self._clock.seconds() - self._resend_timeout
        expired = []
        for sequence, flight in self._in_flight.items():
            if flight.sent_at > deadline:
                break
            expired.append(sequence)
        for sequence in expired:
            self._retransmit(sequence)
        if self._acked:
            self._flushAcks()
        if expired:
            self._log.info(
                "resent {count} unacknowledged packets",
                count=len(expired),
                role=self._role,
            )
        self._fill()

    def _ack(self, record):
        """Forget ``record``; the journal learns it at the end of this reactor turn."""
        self._acked.append(record)
        if self._ack_flush is None:
            self._ack_flush = self._clock.callLater(0, self._flushAcks)

    def _flushAcks(self):
        if self._ack_flush is not None and self._ack_flush.active():
            self._ack_flush.cancel()
        self._ack_flush = None
        acked, self._acked = self._acked, []
        if acked:
            try:
                self._queue.ack(acked)
            except OSError as e:
                self._log.critical(
                    "could not journal {count} ACKs, retrying: {error}",
                    count=len(acked),
                    error=e,
                    role=self._role,
                )
                self._acked = acked + self._acked
                return
        if len(self._queue) == 0:
            waiters, self._drain_waiters = self._drain_waiters, []
            for waiter in waiters:
                waiter.callback(None)
