"""The composition root: the app assembled from the channels and the console,
the `hub` command line, and the worker. The only part of `hub` that imports
transports (Starlette, uvicorn, the channels, the console)."""
