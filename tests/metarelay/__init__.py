"""Tests of the metarelay role."""
