"""
The jobmaster role: builds mining jobs from the node's block templates, serves
them to gateways, and submits the blocks they find (ref §3).
"""
