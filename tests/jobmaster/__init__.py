"""Tests for viabtc.jobmaster."""
