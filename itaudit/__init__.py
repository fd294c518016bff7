"""itaudit: a lightweight audit agent for small-city IT."""

__version__ = "0.1.0"
