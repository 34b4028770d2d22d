"""Benchmarks: each module writes its figures as JSON under benchmarks/results/."""
