# -*- test-case-name: tests.bitcoin.test_subsidy -*-
"""
The block subsidy.  The seed's empty-block jobs halved while ``height >
210000``, paying 50 BTC at the first 25-BTC height (ref §3.9, §12.7); a block
claiming that would be invalid.  This is Core's ``GetBlockSubsidy``.
"""

#: The first subsidy, in satoshis.
INITIAL_SUBSIDY = 50 * 100_000_000


def block_subsidy(height, network):
    """
    Satoshis of new coin in block ``height``: 50 BTC halved once per
    ``network.halving_interval`` completed blocks, 0 from the 64th halving.
    """
    if height < 0:
        raise ValueError(f"block height cannot be negative: {height}")
    halvings = height // network.halving_interval
    if halvings >= 64:
        return 0
    return INITIAL_SUBSIDY >> halvings
