"""Bitcoin P2P: the pure message codec and its Twisted protocol, and the seed's thin blocks (``thin``)."""
