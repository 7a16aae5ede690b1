"""The package version (as in ``pyproject.toml``), in a module that any layer may import."""

__version__ = "0.1.0"
