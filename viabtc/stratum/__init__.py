# -*- test-case-name: tests.stratum -*-
"""Stratum v1: jobs, share checks, vardiff, the miner-facing server session and the client side."""
