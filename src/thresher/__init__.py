"""Thresher: an open-source render farm manager."""

__version__ = "0.1.0"
