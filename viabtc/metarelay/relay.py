# -*- test-case-name: tests.metarelay.test_relay -*-
"""
The relay's intake: a statistics packet is ACKed only once it is durable
in the relay's own queue.

The seed ACKed at once and kept in-flight packets in memory, so a relay
crash lost them (ref §8.1, §12.26).  Here the packets of one reactor turn
are journaled by the ``ReliableSender`` with one fsync, and only then ACKed;
the sender forwards each unchanged (same command, type and body) to the
writer and forgets it when the writer ACKs.  A packet the journal refused
(disk full) is not ACKed, so its sender keeps it and retries.

Bodies are read before they are queued, record by record as the writer
reads them (``records.read_body``).  A body is forwarded unchanged when any
of it can be written: an impossible value in one record (a seed gateway's
``goal = inf``) or a torn last record is logged once for the packet, and the
writer drops just that value or tail, so one user's bad record never costs
the other users' records.  A body nothing can be read from (shorter than
its prefix, torn before its first record) or an unknown command can never be
written, so it is logged and ACKed (holding the ACK would make its sender
retry forever) but not forwarded.
"""

from twisted.logger import Logger

from viabtc.rpc.codec import Packet, PacketType
from viabtc.rpc.intake import TurnBatch
from viabtc.stats import records

FORWARDED_COMMANDS = frozenset((
    records.META_BLOCK, records.META_EVENT, records.META_SHARE,
    records.META_MONITOR_INT, records.META_MONITOR_FLOAT,
))


class Relay:
    """
    Forwards packets through ``sender`` (a ``ReliableSender``); ``reactor``
    runs the end-of-turn journal write (``callLater``).
    """

    _log = Logger()

    def __init__(self, sender, reactor, role="metarelay"):
        self.sender = sender
        self._role = role
        self._batch = TurnBatch(reactor, self._forward)
        self.forwarded = 0
        self.dropped = 0
        #: bodies forwarded with impossible values or a torn tail
        self.faulty = 0

    def packet_received(self, packet, ack, peer):
        """One packet from ``peer``; ``ack()`` answers it once it is safe."""
        if packet.pkg_type == PacketType.REPLY:
            return
        if packet.command not in FORWARDED_COMMANDS:
            self._drop(packet, ack, peer, "not a statistics packet")
            return
        try:
            read = records.read_body(packet.command, packet.body)
            records.body_minute(packet.body)
        except records.RecordError as e:
            self._drop(packet, ack, peer, str(e))
            return
        if read.error is not None and not read.records:
            self._drop(packet, ack, peer, read.error)
            return
        if not read.clean:
            self._report(packet, peer, read)
        self._batch.add((Packet(packet.command, packet.body, packet.pkg_type), ack))

    def _report(self, packet, peer, read):
        """One warning for a body forwarded with values the writer will drop."""
        self.faulty += 1
        faults = read.faults
        self._log.warn("command {command} from {peer} forwarded with {faults} impossible values the writer"
                       " will drop: {details}", command=packet.command, peer=peer, faults=len(faults),
                       host=faults[0].host if faults else None, keys=sorted({f.key for f in faults}),
                       details=records.describe(faults, read.error), role=self._role)

    def _drop(self, packet, ack, peer, reason):
        self.dropped += 1
        self._log.warn("dropped command {command} from {peer}: {reason}",
                       command=packet.command, peer=peer, reason=reason, role=self._role)
        ack()

    def drain(self):
        """Journal this turn's packets with one fsync, then ACK them."""
        self._batch.drain()

    def _forward(self, incoming):
        if not self.sender.send_batch([packet for packet, _ in incoming]):
            # Logged by the sender; the senders keep and resend these.
            return
        self.forwarded += len(incoming)
        for _, ack in incoming:
            ack()
