"""Reusable L3 constructs with typed props."""
