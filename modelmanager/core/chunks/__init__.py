"""Chunks: content-addressed pieces of files, planned at tensor boundaries, stored once."""
