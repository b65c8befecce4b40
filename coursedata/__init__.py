"""The course's data plumbing, shared by facescrub, experiments and benchmarks; not part of the engine.

paths: where the course data is read from (data_dir) and where derived files go (cache_dir).
files: atomic_write and write_atomically, so that no reader ever sees half of a file.
cli: run_main (an error in one line, --debug for the traceback) and bounded, for every command line.
"""
