"""The benchmark suite behind `mcga bench` and `make bench`: measured and reported, never asserted.

One module per section (model, serving, batching, tta, memory, metrics_overhead), the real `mcga
serve` processes they drive (servers, load), child processes for peak memory (probe), and the
outputs (report: JSON and BENCHMARKS.md). `suite.run_suite` is the command.
"""
