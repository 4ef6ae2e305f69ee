"""Grading: pure functions on strings that read a completion's final answer and compare it with a gold."""
