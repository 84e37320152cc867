"""Tests of viabtc.node against real bcoin regtest nodes and, for faults a real node cannot show, fakes."""
