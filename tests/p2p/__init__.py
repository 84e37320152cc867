"""Tests for viabtc.p2p: framing, messages, the peer protocol, compact and thin blocks."""
