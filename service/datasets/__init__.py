"""Datasets users upload: parsing and validating what they send before anything stores it."""
