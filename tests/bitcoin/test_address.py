"""
Tests for ``viabtc.bitcoin.address``: BIP173 and BIP350 vectors verbatim
(from the BIPs' reference implementation tests), known base58 addresses, and
bitcoinlib as an independent oracle in both directions.
"""

from hypothesis import assume, example, given
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.address import (
    InvalidAddress,
    address_to_script,
    b58check_encode,
    bech32_decode,
    p2pkh_script,
    p2sh_script,
    script_to_address,
    witness_script,
)
from viabtc.bitcoin.network import MAINNET, NETWORKS, REGTEST, SIGNET, TESTNET

from .oracle import encoding

VALID_BECH32 = [
    "A12UEL5L",
    "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    "?1ezyfcl",
]

VALID_BECH32M = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]

INVALID_BECH32 = [
    " 1nwldj5",
    "\x7f" + "1axkwrx",
    "\x80" + "1eym55h",
    "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
    "pzry9x0s0muk",
    "1pzry9x0s0muk",
    "x1b4n0q5v",
    "li1dgmt3",
    "de1lg7wt" + "\xff",
    "A1G7SGD8",
    "10a06t8",
    "1qzzfhee",
]

INVALID_BECH32M = [
    " 1xj0phk",
    "\x7f" + "1g6xzxy",
    "\x80" + "1vctc34",
    "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
    "qyrz8wqd2c9m",
    "1qyrz8wqd2c9m",
    "y1b0jsk6g",
    "lt1igcx5c0",
    "in1muywd",
    "mm1crxm3i",
    "au1s5cgom",
    "M1VUXWEZ",
    "16plkw9",
    "1p2gdwpf",
]

VALID_ADDRESS = [
    ["BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"],
    [
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
    ],
    [
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
        "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6",
    ],
    ["BC1SW50QGDZ25J", "6002751e"],
    ["bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "5210751e76e8199196d454941c45d1b3a323"],
    [
        "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
        "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ],
    [
        "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
        "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ],
    [
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
    ],
]

# BIP173's invalid addresses, then BIP350's.
INVALID_ADDRESS = [
    "tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty",
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",
    "BC13W508D6QEJXTDG4Y5R3ZARVARY0C5XW7KN40WF2",
    "bc1rw5uspcuh",
    "bc10w508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kw5rljs90",
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7",
    "bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du",
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv",
    "bc1gmk9yu",
    "tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
    "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",
    "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",
    "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",
    "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",
    "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",
    "bc1pw5dgrnzv",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",
    "bc1gmk9yu",
]

BECH32, BECH32M = 1, 0x2BC830A3

#: The genesis coinbase pays this key hash (block 0 output).
GENESIS_ADDRESS = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
GENESIS_HASH160 = bytes.fromhex("62e907b15cbf27d5425399ebf6f0fb50ebb88f18")


class Bech32ChecksumTests(TestCase):
    def test_valid(self):
        for vectors, const in [(VALID_BECH32, BECH32), (VALID_BECH32M, BECH32M)]:
            for text in vectors:
                self.assertEqual(bech32_decode(text)[2], const, text)
                sep = text.rfind("1")
                flipped = text[: sep + 1] + chr(ord(text[sep + 1]) ^ 1) + text[sep + 2 :]
                self.assertRaises(InvalidAddress, bech32_decode, flipped)

    def test_invalid(self):
        for vectors, const in [(INVALID_BECH32, BECH32), (INVALID_BECH32M, BECH32M)]:
            for text in vectors:
                try:
                    decoded = bech32_decode(text)
                except InvalidAddress:
                    continue
                self.assertNotEqual(decoded[2], const, text)


class SegwitAddressVectorTests(TestCase):
    def test_valid(self):
        for address, script_hex in VALID_ADDRESS:
            network = MAINNET if address.lower().startswith("bc") else TESTNET
            script = bytes.fromhex(script_hex)
            self.assertEqual(address_to_script(address, network), script, address)
            self.assertEqual(script_to_address(script, network), address.lower())

    def test_invalid(self):
        for address in INVALID_ADDRESS:
            for network in NETWORKS:
                self.assertRaises(InvalidAddress, address_to_script, address, network)


class ErrorMessageTests(TestCase):
    def assertInvalid(self, address, network, words):
        e = self.assertRaises(InvalidAddress, address_to_script, address, network)
        self.assertIn(words, str(e))

    def test_bad_base58_checksum(self):
        self.assertInvalid(GENESIS_ADDRESS[:-1] + "b", MAINNET, "checksum")

    def test_base58_wrong_network(self):
        self.assertInvalid(GENESIS_ADDRESS, TESTNET, "mainnet")
        testnet_address = b58check_encode(b"\x6f" + GENESIS_HASH160)
        self.assertInvalid(testnet_address, MAINNET, "testnet")

    def test_bech32_wrong_network(self):
        self.assertInvalid("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", REGTEST, "mainnet, not regtest")

    def test_unknown_hrp(self):
        self.assertInvalid(INVALID_ADDRESS[0], MAINNET, "unknown prefix 'tc'")

    def test_unknown_kind(self):
        self.assertInvalid("hello world", MAINNET, "base58")
        self.assertInvalid("", MAINNET, "non-empty")

    def test_bad_program_length(self):
        self.assertInvalid("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", MAINNET, "length 16 for version 0")

    def test_bech32_bech32m_mismatch(self):
        self.assertInvalid(INVALID_ADDRESS[11], MAINNET, "must use bech32m")
        self.assertInvalid(INVALID_ADDRESS[14], MAINNET, "must use bech32, not bech32m")

    def test_wrong_base58_length(self):
        self.assertInvalid(b58check_encode(b"\x00" + bytes(19)), MAINNET, "21")


class Base58Tests(TestCase):
    def test_genesis_address(self):
        script = address_to_script(GENESIS_ADDRESS, MAINNET)
        self.assertEqual(script, p2pkh_script(GENESIS_HASH160))
        self.assertEqual(script_to_address(script, MAINNET), GENESIS_ADDRESS)

    def test_testnet_prefixes_shared(self):
        # testnet, signet and regtest use the same base58 version bytes.
        address = b58check_encode(b"\xc4" + GENESIS_HASH160)
        for network in (TESTNET, SIGNET, REGTEST):
            self.assertEqual(address_to_script(address, network), p2sh_script(GENESIS_HASH160))

    def test_no_address_form(self):
        for script in [b"", b"\x6a\x04abcd", bytes.fromhex("0010") + bytes(16), b"\x51\x01\x00"]:
            self.assertRaises(ValueError, script_to_address, script, MAINNET)


networks = st.sampled_from(NETWORKS)
hash160s = st.binary(min_size=20, max_size=20)


@st.composite
def witness_programs(draw):
    version = draw(st.integers(min_value=0, max_value=16))
    if version == 0:
        program = draw(st.sampled_from([20, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)))
    else:
        program = draw(st.binary(min_size=2, max_size=40))
    return version, program


class OracleTests(TestCase):
    """
    Addresses made by bitcoinlib decode to the same scripts with ours, and back.

    bitcoinlib's ``to_bytes`` reads a byte string made only of ASCII hex
    digits (``b"00000000000000000000"``) as hex and unhexlifies it, so every
    binary value goes to it as a hex string, which it cannot misread.
    """

    @given(networks, hash160s, st.booleans())
    @example(MAINNET, b"0" * 20, False)
    def test_base58(self, network, h, p2sh):
        prefix = network.script_hash_prefix if p2sh else network.pubkey_hash_prefix
        theirs = encoding.pubkeyhash_to_addr_base58(h.hex(), prefix=bytes([prefix]))
        script = (p2sh_script if p2sh else p2pkh_script)(h)
        self.assertEqual(address_to_script(theirs, network), script)
        self.assertEqual(script_to_address(script, network), theirs)
        self.assertEqual(encoding.addr_base58_to_pubkeyhash(theirs), h)

    @given(networks, witness_programs())
    def test_segwit_encoded_by_oracle(self, network, version_program):
        version, program = version_program
        script = witness_script(version, program)
        if len(program) in (20, 32, 40):
            theirs = encoding.pubkeyhash_to_addr_bech32(program.hex(), prefix=network.bech32_hrp, witver=version)
        else:
            # bitcoinlib reads other lengths as a whole witness script, and
            # cannot express programs whose script is 20, 32 or 40 bytes.
            assume(len(script) not in (20, 32, 40))
            theirs = encoding.pubkeyhash_to_addr_bech32(script.hex(), prefix=network.bech32_hrp)
        self.assertEqual(address_to_script(theirs, network), script)
        self.assertEqual(script_to_address(script, network), theirs)

    @given(networks, witness_programs())
    def test_segwit_decoded_by_oracle(self, network, version_program):
        script = witness_script(*version_program)
        ours = script_to_address(script, network)
        self.assertEqual(
            encoding.addr_bech32_to_pubkeyhash(ours, prefix=network.bech32_hrp, include_witver=True),
            script,
        )

    @given(networks, witness_programs())
    def test_uppercase_accepted(self, network, version_program):
        script = witness_script(*version_program)
        address = script_to_address(script, network).upper()
        self.assertEqual(address_to_script(address, network), script)
