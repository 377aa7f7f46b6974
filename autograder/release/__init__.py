"""Release: turn an assignment's source into a student release that provably holds no solution.

The flow of ``build.build_release``, one module a step:

- ``plan``: the manifest, the package it ships stripped in memory (``strip``), the notebooks
  checked as nbgrader reads them (``notebook_checks``), the allow and provide lists;
- ``stage``: the release written into an empty staging folder;
- ``gates``: the leak gates every release must pass (``stub_probe`` is the stub gate's script);
- ``selfgrade``: the throwaway nbgrader course, the reference notebooks run once, the self-grade;
- ``digest``: RELEASE_DIGEST and ``release_freshness``;
- ``bundle``: the Colab-ready zip;
- ``build``: the order of it all, and the atomic swap-in when every gate passed.

``shared`` holds what they share; ``authoring`` builds the source notebooks from their cell
files; ``files/`` is what every release ships (README, make_submission.py, requirements).
"""
