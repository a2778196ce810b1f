"""SafeEraser: multimodal machine unlearning benchmark toolkit."""

__version__ = "0.1.0"
