"""Adapters: each wraps one third-party library and is its only importer."""
