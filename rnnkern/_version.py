"""The package version (a leaf, so saving can stamp files without importing
the package root)."""
__version__ = "0.1.0"
