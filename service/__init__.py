"""The reference cross-entropy service: classification losses over HTTP, computed exactly as PyTorch does.

``__version__`` is the installed distribution's version (pyproject.toml's, through the package
metadata): the OpenAPI document, ``GET /v2``, the front page and its JSON index all report it.
"""

from importlib import metadata

__all__ = ["__version__"]

__version__ = metadata.version("xent-service")
