"""tradeoffs: the kernels behind the executable book on the accuracy-robustness trade-off."""

__version__ = "0.1.0"
