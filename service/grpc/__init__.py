"""The gRPC edge: the `mcga.v1.Reconstruction` service over the shared inference core."""
