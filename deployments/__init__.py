"""Thin Ray Serve wrappers around services/, composed into one application by builder.py."""
