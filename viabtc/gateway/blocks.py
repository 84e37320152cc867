# -*- test-case-name: tests.gateway.test_blocks -*-
"""
Block candidates from the gateway to the jobmaster (cmd 2, ref §3.8, §4.5).

A lost block costs the pool a whole reward, so a candidate is never
dropped: it is written to the jobmaster link before the miner hears its
share was accepted; while the link is down it waits in memory (logged as
critical, so alertcenter hears of it) and goes out the moment a jobmaster
link is up again.  A connection can die without the gateway noticing for up
to its heartbeat timeout, taking candidates written into it along; so the
candidates sent within that window before a disconnect are sent once more
after the reconnect.  A jobmaster given one twice submits a duplicate,
which the node refuses harmlessly.
"""

import collections
import json

from twisted.logger import Logger
from zope.interface import implementer

from viabtc.bitcoin.hashing import hash_to_display_hex
from viabtc.rpc.codec import Command, Packet, PacketType
from viabtc.rpc.interfaces import ILinkObserver


def found_block_body(prepared, result, kind="main", name=None):
    """
    The seed's cmd 2 body for a share ``result`` (a ``ShareResult``) on job
    ``prepared``: ``{"job_id","hash","block_head","coinbase","type","name"}``,
    ``hash`` in display order, the header and the legacy coinbase as hex.
    """
    return json.dumps(
        {
            "job_id": prepared.job_id,
            "hash": hash_to_display_hex(result.hash),
            "block_head": result.header.hex(),
            "coinbase": result.coinbase.hex(),
            "type": kind,
            "name": prepared.job.main_name if name is None else name,
        },
        separators=(",", ":"),
    ).encode()


@implementer(ILinkObserver)
class BlockCourier:
    """
    Sends cmd 2 packets over ``link`` (the jobmaster ``FailoverClient``,
    which must have this courier as an observer).  ``unconfirmed_window``
    is how long a sent candidate may still be lost with its connection (the
    link's heartbeat timeout plus a heartbeat interval).
    """

    _log = Logger()

    def __init__(self, link, clock, unconfirmed_window, role="gateway"):
        self._link = link
        self._clock = clock
        self._window = unconfirmed_window
        self._role = role
        self._pending = []
        self._recent = collections.deque()
        self._stopped = False

    @property
    def pending(self):
        """Candidates waiting for a jobmaster link (body bytes, oldest first)."""
        return [packet.body for packet in self._pending]

    def send(self, body):
        """Send one candidate body now, or keep it until the link is up."""
        packet = Packet(Command.FOUND_BLOCK, body, PacketType.REQUEST)
        if self._link.send(packet):
            self._remember(packet)
            return True
        self._pending.append(packet)
        self._log.critical(
            "jobmaster link down: block candidate buffered ({count} waiting): {body}",
            count=len(self._pending),
            body=body.decode(),
            role=self._role,
        )
        return False

    def _remember(self, packet):
        now = self._clock.seconds()
        recent = self._recent
        while recent and now - recent[0][0] > self._window:
            recent.popleft()
        recent.append((now, packet))

    def on_connect(self, link):
        pending, self._pending = self._pending, []
        for i, packet in enumerate(pending):
            if not self.send(packet.body):
                # The link went down again: send() kept this one; keep the
                # rest behind it, in order, for the next connection.
                self._pending.extend(pending[i + 1:])
                return
        if pending:
            self._log.info("sent {count} buffered block candidates to the jobmaster",
                           count=len(pending), role=self._role)

    def on_packet(self, link, packet):
        """The jobmaster does not answer cmd 2; other packets belong to the job link."""

    def on_disconnect(self, link):
        if self._stopped:
            # Our own orderly close: what was written went out before the FIN.
            return
        now = self._clock.seconds()
        doubtful = [packet for sent, packet in self._recent if now - sent <= self._window]
        self._recent.clear()
        if doubtful:
            self._log.warn(
                "jobmaster link lost with {count} block candidates sent in the last {window:g} s;"
                " they will be sent again",
                count=len(doubtful),
                window=self._window,
                role=self._role,
            )
            self._pending[:0] = doubtful

    def stop(self):
        """
        At shutdown, before the link is closed: what never reached a
        jobmaster is logged in full, for a manual submit.  Returns how many.
        """
        self._stopped = True
        for packet in self._pending:
            self._log.critical(
                "stopping with an undelivered block candidate: {body}", body=packet.body.decode(), role=self._role
            )
        return len(self._pending)
