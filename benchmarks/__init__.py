"""Benchmarks of the mesh on the lab and of the program at scale: `bash benchmarks/run`."""
