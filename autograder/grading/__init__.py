"""Grading: ingest a class's submissions, autograde each in a sandbox, commit, export, give feedback.

- ``grade``: the stages of one submission and the coordinator of a run;
- ``ingest``, ``repair``: safe working copies of submissions, repaired notebooks;
- ``commit``, ``runlock``: the per-student commit point, one run at a time;
- ``preflight``, ``dask_cluster``: the reference through the sandbox first; scale-out;
- ``deadline``: hand-in times and the late policy;
- ``feedback``, ``outputs``, ``report``, ``formgrader``: what students and staff read.
"""
