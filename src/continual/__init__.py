"""continual: keeps a tabular classification model accurate while its data changes."""

__version__ = "0.1.0"
