"""Controllers: the protocol and registry (``base``) and the project's own method (LToS)."""
