"""Placeholder: filled by the neural-network issue."""
