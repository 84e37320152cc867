"""Tests of the mineragent role: config, context, service, CLI, tap, and the role as a process."""
