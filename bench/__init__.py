"""bench: does a GPU pay off for training a small CNN? Measures CPU and GPU training on this machine."""

__version__ = "0.1.0"
