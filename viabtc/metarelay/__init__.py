# -*- test-case-name: tests.metarelay -*-
"""
The metarelay role: store-and-forward of statistics packets (ref §8.1).
Gateways far from the metawriter send to a nearby relay, which keeps every
packet in its own durable queue until the metawriter has acknowledged it.
"""
