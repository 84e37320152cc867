"""Tests of the local service launchers."""
