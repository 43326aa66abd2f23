"""Measurements of the reference convolution against torch (not tests: nothing here asserts a time)."""
