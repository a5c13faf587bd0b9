"""The peers' minimal runtimes (``python -m bench.peers``), each run in the peer's own virtualenv."""
