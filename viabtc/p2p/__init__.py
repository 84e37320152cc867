# -*- test-case-name: tests.p2p -*-
"""Bitcoin P2P: the pure message codec and its Twisted protocol, and the seed's thin blocks (``thin``)."""
