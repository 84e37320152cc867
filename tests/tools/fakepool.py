"""
A FAKE Stratum pool for testing ``viabtc-miner`` and the Stratum client.

This is a fake, not the gateway: the real gateway is tested against the miner
end to end elsewhere.  It exists so the miner's tests need nothing but
loopback and can show what a real pool will not do on demand: a clean job at
a chosen moment, a ``client.reconnect``, a dropped connection, a pool that
checks shares against a harder difficulty than it announced.

It still checks every share for real, independently of ``viabtc.tools``:
coinbase from the job halves and extranonces, merkle root through the branch,
version bits inside the negotiated mask, SHA-256d of the header against the
share target, duplicates, and the block target from nBits.
"""

import json
import struct

import attrs
from twisted.internet.protocol import Factory, Protocol

from viabtc.bitcoin.hashing import hash_to_int, sha256d
from viabtc.bitcoin.header import BlockHeader
from viabtc.bitcoin.merkle import merkle_root_from_branch
from viabtc.bitcoin.serialize import bip34_height_push, compact_size, push_data
from viabtc.bitcoin.target import bits_to_target, difficulty_to_target

#: What the seed gateway ANDs a miner's version-rolling mask with (ref §4.2).
POOL_VERSION_MASK = 0x1FFFE000


@attrs.frozen
class FakeJob:
    job_id: str
    prev_hash: bytes
    coinbase1: bytes
    coinbase2: bytes
    branch: tuple
    version: int
    bits: int
    time: int
    height: int

    def notify_params(self, clean):
        words = struct.unpack("<8I", self.prev_hash)
        swapped = struct.pack(">8I", *words)
        return [self.job_id, swapped.hex(), self.coinbase1.hex(), self.coinbase2.hex(),
                [h.hex() for h in self.branch], f"{self.version:08x}", f"{self.bits:08x}",
                f"{self.time:08x}", clean]


def make_job(job_id, height, bits, extranonce_size=12, branch_size=2, seed=0):
    """A job shaped like the seed's (ref §3.4, §4.4), deterministic from its args."""
    tag = push_data(b"/fakepool/")
    script_prefix = bip34_height_push(height) + tag
    coinbase1 = (struct.pack("<I", 1) + b"\x01" + b"\x00" * 32 + b"\xff\xff\xff\xff"
                 + compact_size(len(script_prefix) + extranonce_size) + script_prefix)
    coinbase2 = (b"\xff\xff\xff\xff" + b"\x01" + struct.pack("<q", 50 * 10**8)
                 + b"\x01\x51" + b"\x00\x00\x00\x00")
    branch = tuple(sha256d(f"tx {seed} {i}".encode()) for i in range(branch_size))
    return FakeJob(job_id=job_id, prev_hash=sha256d(f"prev {seed}".encode()),
                   coinbase1=coinbase1, coinbase2=coinbase2, branch=branch,
                   version=0x20000000, bits=bits, time=1_700_000_000 + seed, height=height)


@attrs.frozen
class Share:
    """A share the fake pool accepted, as it rebuilt it."""

    job_id: str
    extranonce1: bytes
    extranonce2: bytes
    version: int
    nonce: int
    hash: bytes
    block: bool


class FakePoolSession(Protocol):
    """One miner connection to the fake pool."""

    def connectionMade(self):
        self.buffer = b""
        self.mask = 0
        self.authorized = False
        self.extranonce1 = self.factory.next_extranonce1()
        self.factory.sessions.append(self)

    def connectionLost(self, reason):
        self.factory.sessions.remove(self)

    def dataReceived(self, data):
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        for line in lines:
            message = json.loads(line)
            self.factory.requests.append(message)
            handler = getattr(self, "do_" + message["method"].replace(".", "_"), None)
            if handler is not None:
                handler(message["id"], message["params"])

    def send(self, message):
        self.transport.write(json.dumps(message).encode() + b"\n")

    def reply(self, request_id, result=None, error=None):
        self.send({"id": request_id, "result": result, "error": error})

    def notify(self, method, params):
        self.send({"id": None, "method": method, "params": params})

    def do_mining_configure(self, request_id, params):
        self.mask = int(params[1]["version-rolling.mask"], 16) & POOL_VERSION_MASK
        self.reply(request_id, {"version-rolling": True,
                                "version-rolling.mask": f"{self.mask:08x}"})
        self.notify("mining.set_version_mask", [f"{self.mask:08x}"])

    def do_mining_subscribe(self, request_id, params):
        self.reply(request_id, [[["mining.set_difficulty", "1"], ["mining.notify", "1"]],
                                self.extranonce1.hex(), 8])

    def do_mining_authorize(self, request_id, params):
        self.reply(request_id, True)
        self.authorized = True
        self.notify("mining.set_difficulty", [self.factory.difficulty])
        if self.factory.job is not None:
            self.notify("mining.notify", self.factory.job.notify_params(True))

    def do_mining_submit(self, request_id, params):
        error = self.factory.check(self, params)
        self.reply(request_id, error is None, None if error is None else [*error, None])


class FakePool(Factory):
    """
    The fake pool: announces ``difficulty`` but checks shares against
    ``check_difficulty`` (the same unless a test wants rejections).
    """

    protocol = FakePoolSession
    noisy = False

    def __init__(self, difficulty, bits=0x1D00FFFF, check_difficulty=None):
        self.difficulty = difficulty
        self.check_target = difficulty_to_target(
            difficulty if check_difficulty is None else check_difficulty)
        self.bits = bits
        self.jobs = {}
        self.job = None
        self.sessions = []
        self.requests = []
        self.accepted = []
        self.rejected = []
        self._seen = set()
        self._extranonce1 = 0x10000000
        self._next_job = 1
        self.new_job(clean=True)

    def next_extranonce1(self):
        self._extranonce1 += 1
        return self._extranonce1.to_bytes(4, "big")

    def new_job(self, clean):
        """Make a new current job and send it to every authorized session."""
        job_id = f"{self._next_job:x}"
        job = make_job(job_id, height=100 + self._next_job, bits=self.bits, seed=self._next_job)
        self._next_job += 1
        if clean:
            self.jobs.clear()
            self._seen.clear()
        self.jobs[job_id] = job
        self.job = job
        for session in self.sessions:
            if session.authorized:
                session.notify("mining.notify", job.notify_params(clean))
        return job

    def check(self, session, params):
        """None for a valid share, else ``(code, message)`` as the seed answers."""
        _user, job_id, en2_hex, ntime_hex, nonce_hex, *rest = params
        job = self.jobs.get(job_id)
        if job is None:
            return self._reject(21, "Job not found")
        if len(en2_hex) != 16 or len(ntime_hex) != 8 or len(nonce_hex) != 8:
            return self._reject(20, "Malformed submit")
        version_bits = int(rest[0], 16) if rest else 0
        if version_bits & ~session.mask:
            return self._reject(20, "Version bits outside the mask")
        if int(ntime_hex, 16) != job.time:
            return self._reject(20, "ntime changed")
        en2 = bytes.fromhex(en2_hex)
        coinbase = job.coinbase1 + session.extranonce1 + en2 + job.coinbase2
        root = merkle_root_from_branch(sha256d(coinbase), job.branch)
        version = (job.version & ~session.mask) | (version_bits & session.mask)
        nonce = int(nonce_hex, 16)
        digest = sha256d(BlockHeader(version, job.prev_hash, root, job.time, job.bits,
                                     nonce).serialize())
        if digest in self._seen:
            return self._reject(22, "Duplicate share")
        self._seen.add(digest)
        value = hash_to_int(digest)
        if value > self.check_target:
            return self._reject(23, "Low difficulty share")
        self.accepted.append(Share(job_id, session.extranonce1, en2, version, nonce, digest,
                                   value <= bits_to_target(job.bits)))
        return None

    def _reject(self, code, message):
        self.rejected.append(code)
        return code, message

    def send_all(self, method, params):
        for session in list(self.sessions):
            session.notify(method, params)

    def drop_all(self):
        for session in list(self.sessions):
            session.transport.loseConnection()
