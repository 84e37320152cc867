# -*- test-case-name: tests.stats -*-
"""
Statistics: the stats packet bodies (cmds 100-106), the Redis schema (the one
place that spells keys) and the per-minute aggregation on both sides of the
stats path (gateway and metawriter).  Pure: no Twisted, no I/O.
"""
