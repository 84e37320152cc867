"""
Tools that talk to a pool from the outside: ``viabtc-miner``, the CPU Stratum
miner used for the local demo, end-to-end tests and pool checks.
"""
