"""LiveFusion engine: real-time face swap pipeline. Never imports Qt."""

__version__ = "0.1.0"
