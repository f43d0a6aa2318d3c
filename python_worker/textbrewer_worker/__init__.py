"""textbrewer_worker: the PyTorch side of textbrewer-ts."""

__version__ = "0.1.0"
