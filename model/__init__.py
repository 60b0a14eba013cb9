"""MCGA: RGB-to-hyperspectral reconstruction with a Mixture of Codebooks and Grayscale-Aware attention.

Pure PyTorch: nothing here imports the service.
"""
