# -*- test-case-name: tests.bitcoin.test_network -*-
"""
The parameters that differ between Bitcoin networks: address prefixes, P2P
magic, proof-of-work rules, halving interval, default ports.

Values are those of Bitcoin Core's ``chainparams.cpp`` (testnet means
testnet3; testnet4 is BIP94's; signet means the default signet, whose
parameters a custom ``-signetchallenge`` signet shares except its P2P magic,
the first four bytes of the double SHA-256 of its challenge).  Configs and
``getblockchaininfo`` name a network by string; ``get_network`` is the one
place that maps names to these values.
"""

import attrs

from viabtc.bitcoin.hashing import hash_from_display_hex


@attrs.frozen
class Network:
    """One Bitcoin network's consensus and encoding parameters."""

    name: str
    p2p_magic: bytes
    pubkey_hash_prefix: int
    script_hash_prefix: int
    bech32_hrp: str
    halving_interval: int
    pow_limit: int
    pow_no_retargeting: bool
    pow_allow_min_difficulty_blocks: bool
    default_p2p_port: int
    default_rpc_port: int
    #: Hash of block 0, internal order.
    genesis_hash: bytes
    target_timespan: int = 14 * 24 * 60 * 60
    target_spacing: int = 10 * 60
    #: BIP94 (testnet4): retargets start from the period's first block's
    #: bits, and a period's first block may not be more than 600 s older
    #: than its parent (the timewarp rule)
    enforce_bip94: bool = False

    @property
    def retarget_interval(self):
        """Blocks per difficulty period (2016)."""
        return self.target_timespan // self.target_spacing


MAINNET = Network(
    name="mainnet",
    p2p_magic=bytes.fromhex("f9beb4d9"),
    pubkey_hash_prefix=0x00,
    script_hash_prefix=0x05,
    bech32_hrp="bc",
    halving_interval=210000,
    pow_limit=(1 << 224) - 1,
    pow_no_retargeting=False,
    pow_allow_min_difficulty_blocks=False,
    default_p2p_port=8333,
    default_rpc_port=8332,
    genesis_hash=hash_from_display_hex(
        "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    ),
)

TESTNET = Network(
    name="testnet",
    p2p_magic=bytes.fromhex("0b110907"),
    pubkey_hash_prefix=0x6F,
    script_hash_prefix=0xC4,
    bech32_hrp="tb",
    halving_interval=210000,
    pow_limit=(1 << 224) - 1,
    pow_no_retargeting=False,
    pow_allow_min_difficulty_blocks=True,
    default_p2p_port=18333,
    default_rpc_port=18332,
    genesis_hash=hash_from_display_hex(
        "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943"
    ),
)

#: BIP94's testnet4: testnet's addresses and proof-of-work limits, its own
#: magic, ports and genesis, and BIP94's retarget and timewarp rules.
TESTNET4 = attrs.evolve(
    TESTNET,
    name="testnet4",
    p2p_magic=bytes.fromhex("1c163f28"),
    default_p2p_port=48333,
    default_rpc_port=48332,
    genesis_hash=hash_from_display_hex(
        "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043"
    ),
    enforce_bip94=True,
)

SIGNET = Network(
    name="signet",
    p2p_magic=bytes.fromhex("0a03cf40"),
    pubkey_hash_prefix=0x6F,
    script_hash_prefix=0xC4,
    bech32_hrp="tb",
    halving_interval=210000,
    pow_limit=0x00000377AE << 216,
    pow_no_retargeting=False,
    pow_allow_min_difficulty_blocks=False,
    default_p2p_port=38333,
    default_rpc_port=38332,
    genesis_hash=hash_from_display_hex(
        "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6"
    ),
)

REGTEST = Network(
    name="regtest",
    p2p_magic=bytes.fromhex("fabfb5da"),
    pubkey_hash_prefix=0x6F,
    script_hash_prefix=0xC4,
    bech32_hrp="bcrt",
    halving_interval=150,
    pow_limit=(1 << 255) - 1,
    pow_no_retargeting=True,
    pow_allow_min_difficulty_blocks=True,
    default_p2p_port=18444,
    default_rpc_port=18443,
    genesis_hash=hash_from_display_hex(
        "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    ),
)

#: Every network, for code that must look at all of them (address errors).
NETWORKS = (MAINNET, TESTNET, TESTNET4, SIGNET, REGTEST)

_BY_NAME = {
    "mainnet": MAINNET,
    "main": MAINNET,
    "bitcoin": MAINNET,
    "testnet": TESTNET,
    "test": TESTNET,
    "testnet3": TESTNET,
    "testnet4": TESTNET4,
    "signet": SIGNET,
    "regtest": REGTEST,
}


def get_network(name):
    """
    The network a config (or ``getblockchaininfo``'s ``chain``) names:
    "mainnet"/"main"/"bitcoin", "testnet"/"test"/"testnet3", "testnet4",
    "signet" or "regtest", in any case.  ``ValueError`` for anything else.
    """
    try:
        return _BY_NAME[name.strip().lower()]
    except (KeyError, AttributeError):
        raise ValueError(
            f"unknown network {name!r}; expected one of: {', '.join(sorted(_BY_NAME))}"
        ) from None
