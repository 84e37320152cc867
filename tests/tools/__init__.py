"""Tests for viabtc.tools."""
