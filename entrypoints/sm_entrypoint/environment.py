"""The training environment is sagemaker-training's own (SM_* variables, hyperparameters parsed
from either SDK's encoding, channels): we reuse it rather than derive it again."""

from .errors import JobError


def load():
    """sagemaker_training.environment.Environment(), with any failure turned into a cause."""
    try:
        from sagemaker_training import environment
    except ImportError as e:
        raise JobError(f"sagemaker-training is not installed in this image: {e}") from None
    try:
        return environment.Environment()
    except Exception as e:  # noqa: BLE001 - any toolkit failure is reported with its cause
        raise JobError(f"could not read the training environment: {type(e).__name__}: {e}") from e


def env_vars(env):
    """The SM_* variables a user process gets, as strings."""
    return {k: str(v) for k, v in env.to_env_vars().items()}


def cmd_args(hyperparameters):
    """Hyperparameters as `--key value` arguments, the way sagemaker-training renders them."""
    from sagemaker_training import mapping

    return mapping.to_cmd_args(hyperparameters)
