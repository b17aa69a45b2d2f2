"""Placeholder: filled by the neural-network issue."""


class DataLoader:
    pass


class SeqDataLoader(DataLoader):
    pass
