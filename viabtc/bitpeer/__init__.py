"""
The bitpeer role (ref §6.3, §6.4): a Bitcoin P2P client connected to many
nodes, relaying the pool's blocks to them and telling the jobmasters at once
when the network has a new block.
"""
