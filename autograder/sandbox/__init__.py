"""Sandbox: run code a submission controls in bubblewrap, with limits.

- ``limits``: ``Limits`` and the budget of each kind of sandboxed run (kernel, runner, renderer);
- ``bwrap``: the bubblewrap command line, how limits are enforced (rlimits, cgroups), ``run``;
- ``kernel``: the sandboxed Jupyter kernel nbgrader's autograde executes notebooks in.
"""
