"""Batch synthesis of long documents: chapters, per-span markup, lexicons, resumable jobs.

Entry points: ``voxserve batch`` (``batch.cli``) and ``batch.runner.BatchJob`` (also used by the
server's batch jobs). Nothing is imported here, so the CLI's ``--help`` stays fast.
"""
