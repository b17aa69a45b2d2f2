"""Placeholder: VGG16, ResNet, SqueezeNet (advanced issue)."""
__all__: list[str] = []
