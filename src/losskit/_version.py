"""The package version, readable without importing torch (``losskit --version``)."""

__version__ = "0.1.0"
