# -*- test-case-name: tests.integration.test_gateway_stats -*-
"""
A scripted stream of miners for a real gateway, and what it must leave in
Redis (issue 4's acceptance test, ``test_gateway_stats``).

The script is a list of steps (connect, share, block, the four kinds of
reject, a clean job, disconnect, and the turn of a minute).  ``ScriptMiners``
plays it against a gateway's Stratum port the way miners would: shares are
real sha256d proofs ground here against the jobs the gateway sent, rejects
are deliberate.  ``expected_contents`` computes, from the same script and
the rules of docs/redis.md and docs/gateway.md, every Redis key, field and
value the statistics path must produce.

Shares are worth 2^-20 (``DIFFICULTY``, a ``d=`` password) so that a
Python miner finds one in a few milliseconds, and the job's block target is
2^16 times harder than diff-1's inverse, i.e. block difficulty 2^-16
(``BLOCK_BITS``): a share is worth exactly 1/16 of a block (``goal``, an
exact binary fraction, so float sums in any order are equal), and the one
planned block is ground for on purpose while every other share is ground
until it is *not* a block.  Whole pow units (2^32 hashes each) are beyond a
test, so the expected pow follows the gateway's documented carry rule
(integer part now, fraction carried per worker and dropped when its session
ends), which makes it zero here: no ``p`` keys and no ``pow`` monitor, as the
rule says.

The gateway's clock is ``ScriptClock``: the real reactor with its
``seconds()`` moved onto the script's minutes, so that the stream crosses a
minute boundary exactly where the script says without waiting for a real one.
"""

import itertools
import struct

from twisted.internet import reactor
from twisted.internet.task import deferLater
from zope.interface import directlyProvides, providedBy

from viabtc.bitcoin.hashing import hash_to_display_hex, sha256d
from viabtc.bitcoin.target import DIFF1_TARGET, difficulty_to_target
from viabtc.stratum.client import StratumJob
from viabtc.tools.mining import grind, header_prefix

from tests.gateway.support import connect_miner, job_body, wait_for
from tests.integration.test_stats_pipeline import redis_float

#: The script's first minute (a minute start), shared with the metawriter's clock.
M0 = 1_700_000_040
HOST = "gw-stats"
COIN = "btc"
PEER = "127.0.0.1"

DIFFICULTY = 2.0 ** -20
BLOCK_TARGET = 0xFFFF << 224
#: ``BLOCK_TARGET`` in compact form (mantissa 0x00ffff, 31 bytes).
BLOCK_BITS = 0x1F00FFFF
BLOCK_DIFFICULTY = DIFF1_TARGET / BLOCK_TARGET
GOAL = DIFFICULTY / BLOCK_DIFFICULTY
SHARE_TARGET = difficulty_to_target(DIFFICULTY)

#: Nonces ground per call; a share takes about 4096, a block about 65536.
_CHUNK = 1 << 14
_NONCE_SPAN = 1 << 20
#: ntime more than two hours before the job's curtime: out of range (code 27).
_NTIME_WINDOW = 7200


def gateway_job(job_id, prevhash=None):
    """A clean cmd 1 body with the script's block target."""
    changes = {"nbits": BLOCK_BITS, "target": f"{BLOCK_TARGET:064x}"}
    if prevhash is not None:
        changes["prevhash"] = prevhash
    return job_body(job_id, clean=True, **changes)


def _connect(account):
    return ("connect", account)


def _share(account):
    return ("share", account)


def _reject(account, kind):
    return ("reject", account, kind)


# Reject kinds and the Stratum error code each must get (ref §4.5, docs/stratum.md).
REJECT_CODES = {"unknown_job": 21, "duplicate": 22, "low": 23, "stale": 26, "ntime": 27}

#: Minute M0: three workers connect, shares and every kind of reject but
#: stale, a connection that sends garbage, a worker leaves.
PART_A = [
    _connect("alice.rig1"),
    _connect("alice.rig2"),
    _share("alice.rig1"),
    _share("alice.rig2"),
    _reject("alice.rig1", "duplicate"),
    _connect("bob.w1"),
    _share("bob.w1"),
    _share("alice.rig1"),
    _reject("bob.w1", "low"),
    _reject("alice.rig2", "unknown_job"),
    ("garbage",),
    _reject("bob.w1", "ntime"),
    _share("bob.w1"),
    ("disconnect", "alice.rig1"),
]
#: Minute M1, first half: a worker comes back, another is new, the block.
PART_B1 = [
    _connect("alice.rig1"),
    _share("alice.rig1"),
    _connect("carol.x"),
    _share("carol.x"),
    ("block", "bob.w1"),
    _share("alice.rig2"),
]
#: Minute M1, second half: a clean job retires the first (a stale share), everyone leaves.
PART_B2 = [
    ("job", "2"),
    _reject("alice.rig1", "stale"),
    _share("carol.x"),
    _share("alice.rig1"),
    _reject("carol.x", "duplicate"),
    ("disconnect", "carol.x"),
    _share("bob.w1"),
    ("disconnect", "alice.rig1"),
    ("disconnect", "alice.rig2"),
    ("disconnect", "bob.w1"),
]
MINUTE = [("minute",)]
#: The whole stream: M0, the minute turns, M1, the minute turns (M1 is shipped).
SCRIPT = PART_A + MINUTE + PART_B1 + PART_B2 + MINUTE


class ScriptClock:
    """
    The real reactor with its clock moved onto the script's time, for the
    gateway: ``seconds()`` is the real reactor's plus an offset that
    ``move_to`` only ever increases; sockets and timers are the real
    reactor's own (a timer's delay is a difference of two ``seconds()``, so
    it is unaffected).  An injected ``IReactorTime`` as docs/development.md
    asks for, not a fake of any part: time still flows at the real rate.
    """

    def __init__(self, reactor, start):
        self._reactor = reactor
        self._offset = start - reactor.seconds()
        directlyProvides(self, providedBy(reactor))

    def __getattr__(self, name):
        return getattr(self._reactor, name)

    def seconds(self):
        return self._reactor.seconds() + self._offset

    def move_to(self, when):
        """Jump forward to script time ``when`` (never backwards)."""
        now = self.seconds()
        if when < now:
            raise ValueError(f"cannot move the clock back from {now} to {when}")
        self._offset += when - now


def find_share(notify, extranonce1, extranonce2, block):
    """
    ``(ntime hex, nonce hex, hash)`` of a share on ``notify`` (mining.notify
    params) with ``extranonce2`` (8 bytes) that meets the share target and,
    as ``block`` says, meets the block target or does not; None when no
    nonce in the first ``_NONCE_SPAN`` qualifies (try another extranonce2).
    """
    job = StratumJob.from_notify(notify)
    prefix = header_prefix(job, extranonce1, extranonce2, job.version)
    target = BLOCK_TARGET if block else SHARE_TARGET
    for start in range(0, _NONCE_SPAN, _CHUNK):
        for nonce, digest in grind(prefix, start, start + _CHUNK, target):
            if block or int.from_bytes(digest, "little") > BLOCK_TARGET:
                return f"{job.time:08x}", f"{nonce:08x}", digest
    return None


def low_share(notify, extranonce1, extranonce2):
    """``(ntime hex, nonce hex)`` of a header whose hash misses the share target."""
    job = StratumJob.from_notify(notify)
    prefix = header_prefix(job, extranonce1, extranonce2, job.version)
    for nonce in itertools.count():
        if int.from_bytes(sha256d(prefix + struct.pack("<I", nonce)), "little") > SHARE_TARGET:
            return f"{job.time:08x}", f"{nonce:08x}"


class ScriptMiners:
    """
    Plays script steps against a gateway's Stratum ``port`` (``service``
    is the ``GatewayService``, ``jobmaster`` the ``TestJobmaster`` feeding
    it, ``clock`` its ``ScriptClock``).  Each step is finished at the gateway
    before the next begins: a request's reply has arrived, a disconnect has
    been seen.  ``block_hashes`` collects the display hash of each block
    found; ``writer_clock`` (a ``task.Clock``, the metawriter's) follows the
    minute turns.
    """

    def __init__(self, testcase, service, jobmaster, clock, writer_clock):
        self.testcase = testcase
        self.service = service
        self.jobmaster = jobmaster
        self.clock = clock
        self.writer_clock = writer_clock
        self.minute = M0
        self.block_hashes = []
        self._miners = {}
        self._extranonce2 = itertools.count(1)

    @property
    def port(self):
        return self.service.config.svr.binds[0].port

    async def play(self, steps):
        for step in steps:
            await getattr(self, "_" + step[0])(*step[1:])

    async def _connect(self, account):
        miner = await connect_miner(self.port)
        self.testcase.addCleanup(lambda: miner.connected and miner.transport.loseConnection())
        await miner.login(account, f"d={DIFFICULTY!r}")
        await wait_for(lambda: miner.notifications("mining.notify"), what=f"{account}'s first job")
        difficulty = miner.notifications("mining.set_difficulty")[-1][0]
        self.testcase.assertEqual(difficulty, DIFFICULTY)
        self._miners[account] = miner

    async def _submit(self, account, params, code=None):
        miner = self._miners[account]
        reply = await miner.call("mining.submit", [account] + params)
        if code is None:
            self.testcase.assertIs(reply["result"], True, reply)
        else:
            self.testcase.assertEqual(reply["error"][0], code, reply)
        return reply

    async def _grind(self, account, block):
        miner = self._miners[account]
        notify = miner.notifications("mining.notify")[-1]
        while True:
            extranonce2 = next(self._extranonce2).to_bytes(8, "big")
            found = find_share(notify, miner.extranonce1, extranonce2, block)
            if found is not None:
                ntime, nonce, digest = found
                params = [notify[0], extranonce2.hex(), ntime, nonce]
                miner.last_share = params
                return params, digest
            # Let the reactor breathe between long searches.
            await deferLater(reactor, 0, lambda: None)

    async def _share(self, account):
        params, _ = await self._grind(account, block=False)
        await self._submit(account, params)

    async def _block(self, account):
        params, digest = await self._grind(account, block=True)
        await self._submit(account, params)
        self.block_hashes.append(hash_to_display_hex(digest))

    async def _reject(self, account, kind):
        miner = self._miners[account]
        notify = miner.notifications("mining.notify")[-1]
        extranonce2 = next(self._extranonce2).to_bytes(8, "big")
        if kind == "duplicate":
            params = miner.last_share
        elif kind == "low":
            params = [notify[0], extranonce2.hex(), *low_share(notify, miner.extranonce1, extranonce2)]
        elif kind == "unknown_job":
            params = ["7777", extranonce2.hex(), notify[7], "00000000"]
        elif kind == "stale":
            first = miner.notifications("mining.notify")[0]
            params = [first[0], extranonce2.hex(), first[7], "00000000"]
        else:
            params = [notify[0], extranonce2.hex(), f"{int(notify[7], 16) - _NTIME_WINDOW - 1:08x}", "00000000"]
        await self._submit(account, params, REJECT_CODES[kind])

    async def _garbage(self):
        """A connection that sends a line that is not JSON: answered and closed by the gateway."""
        miner = await connect_miner(self.port)
        miner.send_raw(b"this is not json\n")
        await miner.closed
        await wait_for(lambda: len(self.service.server.sessions) == len(self._miners), what="the garbage closed")

    async def _disconnect(self, account):
        miner = self._miners.pop(account)
        miner.transport.loseConnection()
        await miner.closed
        await wait_for(lambda: len(self.service.server.sessions) == len(self._miners),
                       what=f"{account}'s session closed")

    async def _job(self, job_id):
        self.jobmaster.push_job(gateway_job(job_id, prevhash=f"{int(job_id):064x}"))
        await wait_for(lambda: self.service.context.jobs.current.job_id == job_id, what=f"job {job_id}")
        for account, miner in self._miners.items():
            await wait_for(lambda: miner.notifications("mining.notify")[-1][0] == job_id,
                           what=f"job {job_id} at {account}")

    async def _minute(self):
        """
        The minute turns: the gateway's clock moves one second into the next
        minute and its statistics tick runs at once (sampling ``connections``
        while no miner comes or goes, and shipping the minute that ended);
        the metawriter's clock follows, so it flushes as at a real turn.
        The gateway's packets are ACKed first: the jump would make any still
        in flight look overdue, and resending them proves nothing here.
        """
        # Nothing in flight across the jump, or the gateway would resend it as late.
        await self.service.sender.when_drained()
        self.minute += 60
        self.clock.move_to(self.minute + 1)
        self.service.stats.tick()
        self.writer_clock.advance(self.minute + 1 - self.writer_clock.seconds())


def expected_contents(script, block_hashes, host=HOST, coin=COIN):
    """
    Every Redis key ``script`` must produce through gateway, metarelay and
    metawriter (docs/redis.md), as ``{key: dict | set | list}``;
    ``block_hashes`` are the display hashes of the blocks the miners found,
    in order (the only values a script cannot know: extranonce1 is random).
    """
    hashes = {}
    monitors = set()
    events, workers, blocks = [], [], []
    seen_workers = set()
    carry = {}
    live = 0
    blocks_found = iter(block_hashes)
    minute = M0

    def add(key, value):
        fields = hashes.setdefault(key, {})
        fields[minute] = fields.get(minute, 0) + value

    def monitor(key, value):
        if value:
            add(f"{coin}:m:{key}", value)
            monitors.add(key)

    def accepted(user, worker):
        # The gateway's carry rule (docs/gateway.md, Statistics).
        total = carry.pop((user, worker), 0.0) + DIFFICULTY
        whole = int(total)
        if total != whole:
            carry[(user, worker)] = total - whole
        add(f"{coin}:s:{user}", 1)
        add(f"{coin}:s:{user}:{worker}", 1)
        add(f"{coin}:g:{user}", GOAL)
        if whole:
            add(f"{coin}:p:{user}", whole)
            add(f"{coin}:p:{user}:{worker}", whole)
        monitor("share", 1)
        monitor("pow", whole)
        # Our gateways' exact sum beside the seed's integer pow (docs/redis.md).
        monitor("pow_float", DIFFICULTY)
        monitor("goal", GOAL)

    def event(user, worker, name):
        events.append('{"user": "%s", "worker": "%s", "coin": "%s", "peer": "%s", "event": "%s"}'
                      % (user, worker, coin, PEER, name))
        if name == "connected" and (user, worker) not in seen_workers:
            seen_workers.add((user, worker))
            workers.append('{"user": "%s", "worker": "%s", "coin": "%s"}' % (user, worker, coin))

    # The jobmaster's first job reaches the gateway as it starts.
    monitor("job_broadcast", 1)
    monitor("job_clean", 1)
    for step in script:
        kind = step[0]
        if kind == "minute":
            minute += 60
            monitor("connections", live)
            continue
        if kind == "job":
            monitor("job_broadcast", 1)
            monitor("job_clean", 1)
            continue
        if kind == "garbage":
            monitor("connection_new", 1)
            monitor("request_invalid", 1)
            monitor("connection_close", 1)
            continue
        user, worker = step[1].split(".")
        if kind == "connect":
            live += 1
            monitor("connection_new", 1)
            monitor("new_authorized", 1)
            event(user, worker, "connected")
        elif kind == "disconnect":
            live -= 1
            monitor("connection_close", 1)
            event(user, worker, "disconnected")
            carry.pop((user, worker), None)
        elif kind == "share":
            accepted(user, worker)
        elif kind == "block":
            accepted(user, worker)
            monitor("block", 1)
            blocks.append('{"user": "%s", "worker": "%s", "name": "BTC", "hash": "%s"}'
                          % (user, worker, next(blocks_found)))
        else:
            code = REJECT_CODES[step[2]]
            add(f"{coin}:s:{user}:reject", 1)
            add(f"{coin}:s:{user}:{worker}:reject", 1)
            monitor("reject", 1)
            monitor(f"reject_{code}", 1)

    contents = {}
    for key, fields in hashes.items():
        text = {str(m): (redis_float(v) if isinstance(v, float) else str(v)) for m, v in fields.items()}
        contents[key] = text
        if key.startswith(f"{coin}:m:"):
            contents[f"{coin}:mh:{host}:{key[len(coin) + 3:]}"] = dict(text)
    for key in monitors:
        contents[f"{coin}:mk:{key}"] = {host}
    contents["monitor:keys"] = {f"{coin}:m:{key}" for key in monitors}
    contents["mining:keys"] = {key for key in hashes if not key.startswith(f"{coin}:m:")}
    contents["newevent"] = events
    contents["newworker"] = workers
    contents["newblock"] = blocks
    return contents
