"""Test doubles that are real code: providers, channels and a classifier that record."""
