"""The shared SageMaker entrypoint: `train` and `serve` for every image in this repository.

One concept a module: errors (a cause and an exit code), failure (the failure file), settings
(our own knobs), config (SageMaker's JSON files), environment (sagemaker-training's SM_* view),
program (what to run), script (a user script as a process), source (the submitted code), process
(running it), cluster (hosts), train and serve (the two commands).
"""
