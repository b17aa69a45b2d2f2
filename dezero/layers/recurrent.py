"""Placeholder: RNN, LSTM, GRU (advanced issue)."""
__all__: list[str] = []
