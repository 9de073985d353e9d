"""Running the study's job matrix: executors (in process, Dask) and the per-job task."""
