"""Security tests: hostile peers, forged packets, fuzzed parsers, soak under attack."""
