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

Bodies are checked before they are queued: a malformed body or an unknown
command can never be written, so it is logged and ACKed (holding the ACK
would make its sender retry forever) but not forwarded.
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

    def packet_received(self, packet, ack, peer):
        """One packet from ``peer``; ``ack()`` answers it once it is safe."""
        if packet.pkg_type == PacketType.REPLY:
            return
        if packet.command not in FORWARDED_COMMANDS:
            self._drop(packet, ack, peer, "not a statistics packet")
            return
        try:
            records.decode_body(packet.command, packet.body)
            records.body_minute(packet.body)
        except records.RecordError as e:
            self._drop(packet, ack, peer, str(e))
            return
        self._batch.add((Packet(packet.command, packet.body, packet.pkg_type), ack))

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
