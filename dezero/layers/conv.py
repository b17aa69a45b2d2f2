"""Placeholder: Conv2d, Deconv2d (advanced issue)."""
__all__: list[str] = []
