"""The Open Inference Protocol (KServe v2), with Triton's binary tensor data extension.

``protocol`` holds the messages (pydantic, documented in OpenAPI), ``codec`` turns request bytes into
arrays and arrays into response bytes, ``registry`` maps each model onto the core function of its /v1
endpoint, and ``routes`` serves it all under /v2.
"""

from service.api.v2.routes import v2_routes

__all__ = ["v2_routes"]
