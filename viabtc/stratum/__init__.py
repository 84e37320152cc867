"""Stratum mining protocol, server side: jobs, share checks, vardiff and the miner-facing session."""
