"""The course's data plumbing, shared by facescrub, experiments and benchmarks; not part of the engine.

paths: where the course data is read from (data_dir) and where derived files go (cache_dir).
files: atomic_write, so that no reader ever sees half of a file.
"""
