"""
Tests for ``viabtc.bitcoin.signet``, with the real block 1 of the default
signet (from Bitcoin Core's functional test data, feature_signet.py as
first released) and blocks built here for an ``OP_TRUE`` challenge.
"""

import attrs
from hypothesis import given, strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.block import Block, parse_block
from viabtc.bitcoin.hashing import hash_to_display_hex
from viabtc.bitcoin.merkle import merkle_root
from viabtc.bitcoin.signet import (
    EMPTY_SOLUTION, OP_TRUE_CHALLENGE, SIGNET_HEADER, SignetError, challenge_needs_signer,
    check_signet_block, commitment_output_script, find_solution, serialize_solution,
    with_solution,
)
from viabtc.bitcoin.transaction import TxOut, witness_commitment_script

#: Block 1 of the default signet, signed with the signet's key.
SIGNET_BLOCK_1 = bytes.fromhex(
    "00000020f61eee3b63a380a477a063af32b2bbc97c9ff9f01f2c4225e973988108000000f575c83235984e7d"
    "c4afc1f30944c170462e84437ab6f2d52e16878a79e4678bd1914d5fae77031eccf407000101000000000101"
    "0000000000000000000000000000000000000000000000000000000000000000ffffffff025151feffffff02"
    "00f2052a010000001600149243f727dd5343293eb83174324019ec16c2630f0000000000000000776a24aa21"
    "a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf94c4fecc7daa249004730"
    "4402205e423a8754336ca99dbe16509b877ef1bf98d008836c725005b3c787c41ebe46022047246e4467ad7c"
    "c7f1ad98662afcaf14c115e0095a227c7b05c5182591c23e7e01000120000000000000000000000000000000"
    "000000000000000000000000000000000000000000")
DEFAULT_CHALLENGE = bytes.fromhex(
    "512103ad5e0edad18cb1f0fc0d28a3d4f1f3e445640337489abb10404f2d1e086be430210359ef5021964fe22d"
    "6f8e05b2463c9540ce96883fe3b278760f048f5189f2e6c452ae")


def op_true_block(solution=EMPTY_SOLUTION):
    """Signet block 1 re-made for an OP_TRUE challenge: its commitment with ``solution``."""
    block = parse_block(SIGNET_BLOCK_1)
    coinbase = block.transactions[0]
    commitment = witness_commitment_script(merkle_root([bytes(32)]))
    script = commitment if solution is None else with_solution(commitment, solution)
    outputs = [coinbase.outputs[0], TxOut(0, script)]
    return Block(block.header, [attrs.evolve(coinbase, outputs=outputs)])


class RealSignetBlockTests(TestCase):

    def test_block_1(self):
        block = parse_block(SIGNET_BLOCK_1)
        self.assertEqual(hash_to_display_hex(block.hash()),
                         "00000086d6b2636cb2a392d45edc4ec544a10024d30141c9adf4bfd9de533b53")
        self.assertTrue(block.check_witness_commitment())
        script_sig, witness = find_solution(commitment_output_script(block))
        # One push of a 71-byte DER signature with its sighash byte, after OP_0.
        self.assertEqual((script_sig[:2], len(script_sig), witness), (b"\x00\x47", 73, ()))

    def test_a_signed_challenge_is_refused(self):
        self.assertTrue(challenge_needs_signer(DEFAULT_CHALLENGE))
        e = self.assertRaises(SignetError, check_signet_block, parse_block(SIGNET_BLOCK_1),
                              DEFAULT_CHALLENGE)
        self.assertIn("signer", str(e))


class OpTrueTests(TestCase):

    def test_empty_solution(self):
        self.assertEqual(EMPTY_SOLUTION, b"\x00\x00")
        self.assertEqual(serialize_solution(b"\x51", [b"ab"]), b"\x01\x51\x01\x02ab")
        self.assertFalse(challenge_needs_signer(OP_TRUE_CHALLENGE))

    def test_commitment_with_solution(self):
        commitment = witness_commitment_script(bytes(32))
        script = with_solution(commitment)
        self.assertEqual(script, commitment + b"\x06" + SIGNET_HEADER + b"\x00\x00")
        self.assertEqual(find_solution(script), (b"", ()))
        self.assertIsNone(find_solution(commitment))
        self.assertRaises(ValueError, with_solution, b"\x6a")

    def test_block_passes(self):
        check_signet_block(op_true_block(), OP_TRUE_CHALLENGE)
        # No solution at all is what Core allows an OP_TRUE challenge too.
        check_signet_block(op_true_block(None), OP_TRUE_CHALLENGE)

    def test_block_refused(self):
        e = self.assertRaises(SignetError, check_signet_block,
                              op_true_block(serialize_solution(b"\x51")), OP_TRUE_CHALLENGE)
        self.assertIn("empty solution", str(e))
        block = op_true_block()
        coinbase = attrs.evolve(block.transactions[0], outputs=block.transactions[0].outputs[:1])
        e = self.assertRaises(SignetError, check_signet_block,
                              Block(block.header, [coinbase]), OP_TRUE_CHALLENGE)
        self.assertIn("witness commitment", str(e))
        truncated = witness_commitment_script(bytes(32)) + b"\x06" + SIGNET_HEADER + b"\x05"
        self.assertRaises(SignetError, find_solution, truncated)
        self.assertRaises(SignetError, find_solution,
                          witness_commitment_script(bytes(32)) + b"\x4c")


class SolutionPropertyTests(TestCase):

    @given(st.binary(max_size=300), st.lists(st.binary(max_size=100), max_size=5))
    def test_round_trip(self, script_sig, witness):
        script = with_solution(witness_commitment_script(bytes(32)),
                               serialize_solution(script_sig, witness))
        self.assertEqual(find_solution(script), (script_sig, tuple(witness)))

    @given(st.binary(max_size=200))
    def test_any_script_is_answered(self, tail):
        try:
            find_solution(witness_commitment_script(bytes(32)) + tail)
        except SignetError:
            pass
