# -*- test-case-name: tests.gateway -*-
"""
The gateway role: the miners' Stratum server, its link to the jobmaster
(jobs and bans down, block candidates up) and its per-minute statistics
toward the metawriter (ref §4).  ``twistd -n viabtc-gateway --config FILE``.
"""
