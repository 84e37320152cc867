"""Tests for viabtc.stats."""
