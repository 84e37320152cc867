"""Tests of the gateway role: config, bans, context, statistics, service and tap."""
