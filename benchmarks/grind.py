# -*- test-case-name: benchmarks -*-
"""
Pre-ground shares: the work a load generator replays.

A load generator that hashes while it sends would be slower than the
gateway it measures (a share costs the same hashes on both sides, and
twice as many on the generator's when half the hashes miss).  So every
session's shares are found before the measurement, in a process pool, and
rendered into ``mining.submit`` lines; the measurement only writes bytes.

``WorkSpec`` is what a miner knows from ``mining.subscribe`` and
``mining.notify``; ``grind`` walks extranonce2 and, for each, the nonces
of one merkle root (the root costs thirteen double hashes, a nonce one),
sorting hashes into those meeting the session's share target and those
missing it (low-difficulty rejects).
"""

import hashlib
import signal
import struct

import attrs

_sha256 = hashlib.sha256
_HEADER76 = struct.Struct("<I32s32sII")
#: Nonces tried per extranonce2 (per merkle root).
NONCES_PER_ROOT = 4096


def prevhash_from_notify(text):
    """Internal-order prevhash from ``mining.notify``'s form (each 4-byte word byte-swapped)."""
    raw = bytes.fromhex(text)
    return b"".join(raw[i : i + 4][::-1] for i in range(0, 32, 4))


@attrs.frozen
class WorkSpec:
    """One session's work: its coinbase prefix (coinbase1 ‖ extranonce1) and the job's fields."""

    account: str
    job_id: str
    prefix: bytes
    coinbase2: bytes
    branch: tuple
    version: int
    prevhash: bytes
    nbits: int
    ntime: int
    #: the session's share target: hashes at or below it are valid shares
    target: int

    @classmethod
    def from_notify(cls, account, extranonce1, params, target):
        """From the ``mining.notify`` params list and the subscribe reply's extranonce1 (hex)."""
        job_id, prevhash, coinbase1, coinbase2, branch, version, nbits, ntime = params[:8]
        return cls(
            account=account,
            job_id=job_id,
            prefix=bytes.fromhex(coinbase1) + bytes.fromhex(extranonce1),
            coinbase2=bytes.fromhex(coinbase2),
            branch=tuple(bytes.fromhex(h) for h in branch),
            version=int(version, 16),
            prevhash=prevhash_from_notify(prevhash),
            nbits=int(nbits, 16),
            ntime=int(ntime, 16),
            target=target,
        )


def grind(spec, first_extranonce2, valid, invalid):
    """
    ``(valid_shares, invalid_shares)``: lists of ``(extranonce2, nonce)``
    with at least ``valid`` hashes at or below ``spec.target`` and
    ``invalid`` above it, extranonce2 counting up from ``first_extranonce2``.
    """
    good, bad = [], []
    en2 = first_extranonce2
    target = spec.target
    while len(good) < valid or len(bad) < invalid:
        en2_bytes = en2.to_bytes(8, "big")
        h = _sha256(_sha256(spec.prefix + en2_bytes + spec.coinbase2).digest()).digest()
        for sibling in spec.branch:
            h = _sha256(_sha256(h + sibling).digest()).digest()
        head = _HEADER76.pack(spec.version, spec.prevhash, h, spec.ntime, spec.nbits)
        for nonce in range(NONCES_PER_ROOT):
            share = _sha256(_sha256(head + nonce.to_bytes(4, "little")).digest()).digest()
            if int.from_bytes(share, "little") <= target:
                if len(good) < valid:
                    good.append((en2_bytes, nonce))
            elif len(bad) < invalid:
                bad.append((en2_bytes, nonce))
            if len(good) >= valid and len(bad) >= invalid:
                break
        en2 += 1
    return good, bad


def submit_line(msg_id, spec, extranonce2, nonce):
    return b'{"id":%d,"method":"mining.submit","params":["%s","%s","%s","%08x","%08x"]}\n' % (
        msg_id,
        spec.account.encode(),
        spec.job_id.encode(),
        extranonce2.hex().encode(),
        spec.ntime,
        nonce,
    )


def submit_lines(spec, first_extranonce2, valid, reject_every, first_id=100):
    """
    ``valid`` valid submit lines with a low-difficulty reject after every
    ``reject_every`` of them (0: none), ids counting from ``first_id``.
    Returns ``(lines, rejects)``.
    """
    invalid = valid // reject_every if reject_every else 0
    good, bad = grind(spec, first_extranonce2, valid, invalid)
    lines = []
    msg_id = first_id
    bad_iter = iter(bad)
    for i, (en2, nonce) in enumerate(good, 1):
        lines.append(submit_line(msg_id, spec, en2, nonce))
        msg_id += 1
        if reject_every and i % reject_every == 0:
            en2, nonce = next(bad_iter)
            lines.append(submit_line(msg_id, spec, en2, nonce))
            msg_id += 1
    return lines, invalid


def grind_task(args):
    """``submit_lines`` for a process pool: ``args`` is its argument tuple."""
    return submit_lines(*args)


def worker_init():
    """
    Pool worker start-up: default signal handlers.  Workers forked from a
    running reactor inherit its SIGTERM handler, which only asks that
    (absent) reactor to stop, so ``Pool.terminate`` would wait forever.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
