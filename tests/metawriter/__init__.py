"""Tests of the metawriter role."""
