"""The MCGA model server: REST and gRPC front ends over one batching inference engine."""
