"""MXNet's part of the mxnet image: the serving defaults (see serving_defaults)."""
