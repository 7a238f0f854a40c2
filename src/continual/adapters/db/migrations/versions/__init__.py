"""One migration per schema change, oldest first (``0001`` is the 0.x release's layout)."""
