"""Layers run in worker processes, so that what one does to its process costs only its own entry.

``pool`` (the parent's side: a pool of worker processes started with ``spawn``, tasks sent over
``multiprocessing`` pipes, outcomes streamed back as they finish, a process that dies or goes
quiet for too long reported and replaced) and ``worker`` (the child's side: its loop, and how it
keeps a layer from reaching the parent's stdout, signals or pipe). The CLI and the pytest plugin
both use it; the tasks they send are their own module-level functions, which import the layers
in the worker.
"""
