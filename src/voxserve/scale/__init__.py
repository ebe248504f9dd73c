"""Scale-out: voxserve on Ray Serve (``ray_app``), and sizing a deployment from measurements.

- ``options``: the Ray flags of ``voxserve serve --ray`` and the Serve deployment settings they make.
- ``ray_app``: the Ray Serve deployment (a whole voxserve server per replica) and the ``app``
  builder for ``serve run voxserve.scale.ray_app:app``.
- ``sizing``: the committed capacity tables (``docs/benchmarks/sizing/*.json``) and the capacity
  curve read from them; ``sizing_report`` builds those tables from GPU runs and draws the plots.
- ``plan``: ``voxserve plan``, replicas and GPUs for a load.

Nothing here imports Ray until a Ray function runs.
"""
