# -*- test-case-name: tests.metawriter -*-
"""
The metawriter role: receives the gateways' statistics packets (directly or
through metarelay), drops retransmissions, sums them per minute and writes
them to Redis in exactly the seed's keys (ref §8), losing nothing and
counting nothing twice across crashes and Redis outages.
"""
