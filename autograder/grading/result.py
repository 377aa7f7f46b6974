"""What grading one submission can come to: the statuses of a submission's result."""
from __future__ import annotations


#: Status of a whole submission.
GRADED, PARTIAL, REJECTED = "graded", "partial", "rejected"
