"""Tests for viabtc.rpc."""
