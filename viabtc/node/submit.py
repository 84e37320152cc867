# -*- test-case-name: tests.node.test_submit -*-
"""
Submitting a found block to every node, and finding out whether it landed.

A found block is worth a whole block reward, so it goes to every node at
once (any one of them relaying it is enough) and the answer is not taken on
trust: ``submitblock`` answers differ between nodes (bitcoind's BIP22
strings, bcoin's ``"rejected: <reason>"``, which also says ``duplicate``
for a block it knows to be invalid), so afterwards every node is asked
whether the block is in its best chain (``getblockheader`` for its height,
then ``getblockhash`` at that height: a known header alone may be a stale
or invalid block).

``submit`` is idempotent: submitting the same block again is safe (nodes
answer "duplicate"), so the caller may retry a report that is
``retryable`` (no node could judge the block).
"""

import enum

import attrs
from twisted.internet import defer
from twisted.logger import Logger

from viabtc.bitcoin.hashing import hash_to_display_hex, sha256d
from viabtc.node.jsonrpc import NodeCallError, NodeError, json_string

#: JSON-RPC error codes meaning "not ready", not "bad block": warming up,
#: initial block download, no peers.
NODE_NOT_READY_CODES = frozenset({-28, -10, -9})


class Outcome(enum.Enum):
    """What one node said to ``submitblock``."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    INCONCLUSIVE = "inconclusive"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"


class Presence(enum.Enum):
    """Where one node has the block afterwards."""

    IN_CHAIN = "in its best chain"
    OFF_CHAIN = "known, not in its best chain"
    UNKNOWN = "unknown"
    UNREACHABLE = "unreachable"


def classify_submit_result(result):
    """
    ``(Outcome, reason)`` for a ``submitblock`` result: null is accepted;
    "duplicate" and "duplicate-inconclusive" are duplicates;
    "duplicate-invalid" and any other text is a rejection with that reason;
    bcoin prefixes its texts with "rejected: ".
    """
    if result is None:
        return Outcome.ACCEPTED, None
    if not isinstance(result, str):
        return Outcome.INCONCLUSIVE, f"unexpected reply {result!r:.80}"
    reason = result.removeprefix("rejected: ").strip()
    if reason in ("duplicate", "duplicate-inconclusive"):
        return Outcome.DUPLICATE, reason
    if reason.startswith("inconclusive"):
        return Outcome.INCONCLUSIVE, reason
    return Outcome.REJECTED, reason or "rejected"


def classify_submit_error(error):
    """``(Outcome, reason)`` for a ``submitblock`` call that failed."""
    if isinstance(error, NodeError):
        text = f"error {error.code}: {error.message}"
        if error.code in NODE_NOT_READY_CODES:
            return Outcome.INCONCLUSIVE, text
        return Outcome.REJECTED, text
    return Outcome.UNREACHABLE, getattr(error, "reason", str(error))


@attrs.frozen
class NodeSubmission:
    """One node's part of a submission."""

    node: str
    outcome: Outcome
    reason: str | None
    presence: Presence

    def describe(self):
        said = self.outcome.value + (f" ({self.reason})" if self.reason else "")
        return f"{self.node}: {said}, block {self.presence.value}"


@attrs.frozen
class SubmitReport:
    """What every node said about one block, and where it is now."""

    block_hash: bytes
    nodes: tuple

    @property
    def accepted(self):
        """True when at least one node has the block in its best chain."""
        return any(n.presence is Presence.IN_CHAIN for n in self.nodes)

    @property
    def rejected(self):
        """True when a node judged the block invalid."""
        return any(n.outcome is Outcome.REJECTED for n in self.nodes)

    @property
    def retryable(self):
        """True when the block did not land and no node could judge it."""
        return not self.accepted and all(
            n.outcome in (Outcome.UNREACHABLE, Outcome.INCONCLUSIVE) for n in self.nodes
        )

    def summary(self):
        verdict = "accepted" if self.accepted else "NOT accepted"
        details = "; ".join(n.describe() for n in self.nodes)
        return f"block {hash_to_display_hex(self.block_hash)} {verdict}: {details}"


def _header_from_hex(hex_parts):
    """The first 80 bytes of the block whose hex is ``hex_parts`` (fewer if it is shorter)."""
    head = b""
    for part in hex_parts:
        head += part[:160 - len(head)]
        if len(head) == 160:
            break
    return bytes.fromhex(head.decode("ascii"))


class BlockSubmitter:
    """Sends found blocks to every node of a ``NodeGroup`` and reports."""

    log = Logger()

    def __init__(self, nodes, timeout=60.0, confirm_timeout=10.0):
        self.nodes = nodes
        self.timeout = timeout
        self.confirm_timeout = confirm_timeout

    def submit(self, block, block_hash):
        """
        ``submitblock`` the serialised ``block`` to every node in parallel,
        then confirm: a Deferred with a ``SubmitReport`` (node failures are
        in the report, never a failure of the Deferred).  The requests are
        issued before this returns.  ``ValueError`` at once when
        ``block_hash`` (internal order) is not the hash of ``block``'s
        header, a caller bug that would misreport the block.
        """
        return self.submit_hex((block.hex().encode(),), block_hash)

    def submit_hex(self, hex_parts, block_hash):
        """
        ``submit`` for a block given as lowercase hex bytes in pieces
        (``Candidate.hex_parts``), which go into the request as they are:
        no encoding, no megabyte-sized join.
        """
        if sha256d(_header_from_hex(hex_parts)) != block_hash:
            raise ValueError("block_hash is not the hash of the block's header")
        return defer.Deferred.fromCoroutine(self._submit(json_string(*hex_parts), block_hash))

    async def _submit(self, block_param, block_hash):
        display = hash_to_display_hex(block_hash)
        replies = await self.nodes.call_all("submitblock", block_param, timeout=self.timeout)
        clients = {c.name: c for c in self.nodes.clients}
        presences = await defer.gatherResults(
            [defer.Deferred.fromCoroutine(self._presence(clients[r.node], display)) for r in replies]
        )
        report = SubmitReport(block_hash, tuple(
            NodeSubmission(r.node, *(classify_submit_result(r.result) if r.ok
                                     else classify_submit_error(r.error)), presence)
            for r, presence in zip(replies, presences)
        ))
        if report.accepted:
            self.log.info("{summary}", summary=report.summary(), block_hash=display)
        elif report.rejected:
            self.log.critical("{summary}", summary=report.summary(), block_hash=display)
        else:
            self.log.error("{summary}", summary=report.summary(), block_hash=display)
        return report

    async def _presence(self, client, display):
        try:
            header = await client.call("getblockheader", display, True, timeout=self.confirm_timeout)
        except NodeError:
            return Presence.UNKNOWN
        except NodeCallError:
            return Presence.UNREACHABLE
        height = header.get("height") if isinstance(header, dict) else None
        if not isinstance(height, int) or isinstance(height, bool):
            self.log.error("getblockheader answered {header!r}, without a height",
                           header=header, peer=client.name)
            return Presence.UNREACHABLE
        try:
            at_height = await client.call("getblockhash", height, timeout=self.confirm_timeout)
        except NodeError:
            return Presence.OFF_CHAIN
        except NodeCallError:
            return Presence.UNREACHABLE
        return Presence.IN_CHAIN if at_height == display else Presence.OFF_CHAIN

__all__ = [
    "BlockSubmitter", "SubmitReport", "NodeSubmission", "Outcome", "Presence",
    "classify_submit_result", "classify_submit_error",
]
