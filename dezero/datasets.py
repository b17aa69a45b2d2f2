"""Placeholder: filled by the neural-network issue."""


class Dataset:
    pass
