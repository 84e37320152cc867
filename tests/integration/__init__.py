"""Integration tests: several roles together, real sockets, real Redis, roles as processes."""
