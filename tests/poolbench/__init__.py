"""Tests of the poolbench role."""
