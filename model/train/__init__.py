"""Training: stage 1 (VQ-VAE + MoC), stage 2 (GANet), baselines. Only the CLI and tests import this."""
