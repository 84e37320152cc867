# -*- test-case-name: tests.poolbench -*-
"""
poolbench: watches other pools' Stratum jobs (and our own) as a miner that
never submits, hints new network heights to the jobmaster (cmd 4) and
alerts when our pool lags behind the network (ref §7).
"""
