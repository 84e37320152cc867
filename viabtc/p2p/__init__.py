"""
Bitcoin P2P: the pure message codec (``framing``, ``messages``, ``compact``)
and the Twisted peer protocol (``protocol``) bitpeer and blockmaster share.
"""
