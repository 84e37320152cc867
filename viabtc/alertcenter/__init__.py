# -*- test-case-name: tests.alertcenter -*-
"""
The alertcenter role: receives the alert lines every module sends on a fatal
log (ref §9) and pushes them to the Redis list ``alert:message``, rate-limited
and over one persistent Redis connection.
"""
