"""
The blockmaster role (ref §6.1, §6.2): relays the pool's blocks and foreign
blocks between regions as thin blocks, and to the bitpeers and the local node.
"""
