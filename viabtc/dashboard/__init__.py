# -*- test-case-name: tests.dashboard -*-
"""
The dashboard role: a web page showing what the pool does, read from Redis.
"""
