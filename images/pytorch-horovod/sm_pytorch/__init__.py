"""PyTorch's additions to the shared entrypoint (the model server's defaults)."""
