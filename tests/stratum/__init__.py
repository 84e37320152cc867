"""Tests for viabtc.stratum."""
