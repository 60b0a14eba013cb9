"""Leaf building blocks: quantization, GA operations, attention and blocks. Never imports networks."""
