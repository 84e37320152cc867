"""
The seed's module-to-module RPC packets: codec, TCP/UDP protocols with
heartbeats and trust checks, the failover client, and the acknowledged
(reliable) sender with its on-disk queue.
"""
