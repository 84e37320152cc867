"""Tests of the bitpeer role: config, peers, relay, service, tap, and end to end with bcoin nodes."""
