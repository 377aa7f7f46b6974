"""Sandbox: run code a submission controls in bubblewrap, with limits.

- ``bwrap``: the bubblewrap command line, limits (rlimits, cgroups), ``run``;
- ``kernel``: the sandboxed Jupyter kernel nbgrader's autograde executes notebooks in.
"""
