"""The job matrix, the study runner and the report."""
