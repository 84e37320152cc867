"""Tests for the alertcenter role."""
