"""
Every Stratum error path against the real gateway process (``twistd -n
viabtc-gateway``), fed by a jobmaster RPC server in the test: each reject
code, malformed JSON, a 1 MB line, non-hex fields and wrong param counts
get the documented reply (docs/stratum.md) or a clean close, and after
each one a second, honest connection is still answered.
"""

import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from viabtc.devnet import free_port

from tests.gateway.support import StatsWriter, TestJobmaster, connect_miner, job_body, solve, wait_for
from tests.integration.processes import Processes
from tests.integration.test_mining import gateway_config

DIFFICULTY = 1e-6


class StratumErrorsAgainstTheGatewayProcess(TestCase):
    timeout = 120

    def setUp(self):
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.procs = Processes(self, self.directory)

    async def start(self):
        directory = self.directory
        self.jobmaster = TestJobmaster(job_body("1"))
        jobmaster_port = await self.jobmaster.listen()
        self.addCleanup(lambda: defer.ensureDeferred(self.jobmaster.stop()))
        writer = StatsWriter()
        self.addCleanup(writer.stop)
        self.port = free_port()
        # Many deliberate abuse closes from one host: no strike-ban for it here.
        self.procs.role("gateway", gateway_config(
            self.port, jobmaster_port, writer, os.path.join(directory, "queue"),
            diff_min=DIFFICULTY, diff_default=DIFFICULTY, limits={"ban_strikes": 10000}))
        await self.procs.wait_port("gateway", self.port)
        self.honest = await self.logged_in("honest.rig")

    async def logged_in(self, account):
        miner = await connect_miner(self.port)
        self.addCleanup(lambda: miner.transport.loseConnection())
        await miner.login(account)
        self.notify = (await wait_for(lambda: miner.notifications("mining.notify"), what="a job"))[-1]
        return miner

    async def still_serving(self):
        """The honest miner is answered, and the gateway is up."""
        self.procs.check_alive("gateway")
        reply = await self.honest.call("mining.get_transactions", [])
        self.assertEqual(reply["result"], [])

    async def expect_error(self, miner, method, params, code, message=None):
        reply = await miner.call(method, params)
        self.assertIsNone(reply["result"], reply)
        self.assertEqual(reply["error"][0], code, reply)
        if message is not None:
            self.assertIn(message, reply["error"][1])
        await self.still_serving()
        return reply

    async def expect_close(self, miner, data, message):
        miner.send_raw(data)
        await miner.closed
        errors = [m for m in miner.messages if m.get("id") is None and m.get("error")]
        self.assertEqual(errors[-1]["error"][:2], [20, message])
        await self.still_serving()

    async def test_every_reject_code(self):
        await self.procs.run(self.reject_codes())

    async def reject_codes(self):
        await self.start()
        fresh = await connect_miner(self.port)
        await self.expect_error(fresh, "mining.authorize", ["bob.x", "x"], 25, "Not subscribed")
        await self.expect_error(fresh, "mining.submit", ["bob.x", "1", "00" * 8, "00" * 4, "00" * 4], 25)

        miner = await self.logged_in("alice.rig1")
        job = self.notify
        en2, ntime, nonce, _ = solve(job, miner.extranonce1, DIFFICULTY)
        accepted = await miner.call("mining.submit", ["alice.rig1", "1", en2, ntime, nonce])
        self.assertIs(accepted["result"], True, accepted)
        await self.expect_error(miner, "mining.submit", ["alice.rig1", "1", en2, ntime, nonce], 22)
        await self.expect_error(miner, "mining.submit", ["alice.rig1", "77", en2, ntime, nonce], 21)
        await self.expect_error(miner, "mining.submit", ["mallory.x", "1", en2, ntime, nonce], 24)
        old = f"{int(ntime, 16) - 10_000:08x}"
        await self.expect_error(miner, "mining.submit", ["alice.rig1", "1", en2, old, nonce], 27)
        await self.expect_error(miner, "mining.submit", ["alice.rig1", "1", en2, ntime, nonce, "ffffffff"], 28)
        await self.expect_error(miner, "mining.configure", [], 31, "invalid config")

        hard = await self.logged_in("carol.rig1")
        self.assertIs((await hard.call("mining.suggest_difficulty", [1024]))["result"], True)
        await self.expect_error(hard, "mining.submit", ["carol.rig1", "1", "00" * 8, ntime, "00000000"], 23)

        self.jobmaster.push_job(job_body("2", clean=True, prevhash="22" * 32))
        await wait_for(lambda: len(miner.notifications("mining.notify")) >= 2, what="the clean job")
        await self.expect_error(miner, "mining.submit", ["alice.rig1", "1", "01" * 8, ntime, nonce], 26)

    async def test_malformed_requests(self):
        await self.procs.run(self.malformed())

    async def malformed(self):
        await self.start()
        miner = await self.logged_in("alice.rig1")
        ntime = self.notify[7]
        for params, why in [
            (["alice.rig1", "1", "zz" * 8, ntime, "00000000"], "extranonce2"),
            (["alice.rig1", "1", "00" * 7, ntime, "00000000"], "extranonce2"),
            (["alice.rig1", "1", "00" * 8, "nothex!!", "00000000"], "ntime"),
            (["alice.rig1", "1", "00" * 8, ntime, "0000000g"], "ntime"),
            (["alice.rig1", "1", "00" * 8, ntime, "00000000", "xyz"], "version"),
            (["alice.rig1", "1", "00" * 8, ntime], "5 or 6"),
            (["alice.rig1", "1", "00" * 8, ntime, "00000000", "0", "extra"], "5 or 6"),
            ([7, "1", "00" * 8, ntime, "00000000"], "strings"),
        ]:
            await self.expect_error(miner, "mining.submit", params, 20, why)
        await self.expect_error(miner, "mining.authorize", [], 20, "Invalid params")
        await self.expect_error(miner, "mining.suggest_difficulty", ["x"], 20, "Invalid difficulty")
        await self.expect_error(miner, "mining.nonsense", [], 20, "Unknown method")
        miner.send_raw(b'{"id":"raw","method":"mining.subscribe","params":{}}\n')
        reply = await miner.reply("raw")
        self.assertEqual(reply["error"][:2], [20, "Invalid request"])
        await self.still_serving()

        await self.expect_close(await connect_miner(self.port), b"{not json\n", "Parse error")
        await self.expect_close(await connect_miner(self.port), b"[1, 2, 3]\n", "Parse error")
        await self.expect_close(await connect_miner(self.port), b"\xff\xfe\n", "Parse error")
        await self.expect_close(await connect_miner(self.port), b"x" * (1 << 20) + b"\n", "Line too long")
        await self.expect_close(await connect_miner(self.port), b" " * (1 << 20), "Line too long")
