"""Tests for the pure Bitcoin primitives (``viabtc.bitcoin``)."""
