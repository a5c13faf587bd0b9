"""The peers' minimal runtimes (``python -m bench.peers``): each runs in the peer's own virtual environment."""
