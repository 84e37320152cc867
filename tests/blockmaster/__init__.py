"""Tests of the blockmaster role: config, tx cache, relay, tap, and regions of bcoin nodes."""
