"""Tests for viabtc.stratum.coinbase."""

from twisted.trial.unittest import TestCase

from viabtc.bitcoin.serialize import read_compact_size

from tests.stratum.jobs import agent_coinbase1, miner_coinbase1, prepared_job


def script_sig(coinbase1, prepared):
    """The scriptSig bytes present in a real coinbase1, and its declared length."""
    length, offset = read_compact_size(coinbase1, len(prepared.coinbase1))
    return coinbase1[offset:], length


class MinerLayoutTests(TestCase):
    def test_layout(self):
        prepared = prepared_job(job_id="abcd", height=800_000)
        coinbase1 = miner_coinbase1(prepared, "alice", 0x12, 0x01020304)
        self.assertTrue(coinbase1.startswith(prepared.coinbase1))
        sig, length = script_sig(coinbase1, prepared)
        self.assertEqual(length, len(sig) + 12)
        self.assertEqual(sig[:4], bytes.fromhex("0300350c"))  # BIP34 push of 800000 (0x0c3500)
        self.assertIn(b"/viabtc/test/Mined by alice/", sig)
        self.assertTrue(sig.endswith(b"\x14" + bytes.fromhex("cdab1200") + bytes.fromhex("04030201")))

    def test_unique_id_wraps_to_32_bits(self):
        prepared = prepared_job(job_id="1")
        sig, _ = script_sig(miner_coinbase1(prepared, "a", 0x1FFFF, 0), prepared)
        self.assertEqual(sig[-8:-4], bytes.fromhex("0100ffff"))

    def test_no_account_in_tag_unless_asked(self):
        prepared = prepared_job(coinbase_account=False)
        self.assertNotIn(b"Mined by", miner_coinbase1(prepared, "alice", 1, 2))

    def test_long_tag_stays_within_100_bytes(self):
        prepared = prepared_job(pool_name="p" * 75, coinbase_message="m" * 40, coinbaseaux="ab" * 10)
        for coinbase1 in (miner_coinbase1(prepared, "alice", 1, 2), agent_coinbase1(prepared, "alice", 1, 2)):
            sig, length = script_sig(coinbase1, prepared)
            self.assertLessEqual(length, 100)


class AgentLayoutTests(TestCase):
    def test_layout(self):
        prepared = prepared_job(job_id="abcd")
        sig, length = script_sig(agent_coinbase1(prepared, "alice", 0xDEADBEEF, 7), prepared)
        self.assertEqual(length, len(sig) + 12)
        self.assertTrue(sig.endswith(b"\x12" + bytes.fromhex("cdab") + bytes.fromhex("efbeadde") + bytes.fromhex("07000000")))
