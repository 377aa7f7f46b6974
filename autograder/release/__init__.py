"""Release: turn an assignment's source into a student release that provably holds no solution.

- ``build``: the plan read from the manifest and sources, staging, self-grade, digest, swap-in;
- ``strip``: solution regions of the package become stubs;
- ``gates``: the leak gates every release must pass;
- ``files/``: the files every release ships (README, make_submission.py, requirements).
"""
