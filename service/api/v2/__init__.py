"""The Open Inference Protocol (KServe v2), with Triton's binary tensor data extension.

``protocol`` holds the messages (pydantic, documented in OpenAPI) and ``codec`` turns request bytes
into arrays and arrays into response bytes.
"""
