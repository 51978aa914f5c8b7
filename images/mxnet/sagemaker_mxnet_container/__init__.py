"""The name AWS's MXNet training toolkit gave its package, so scripts written for AWS's MXNet images
import what they used from it (`training_utils`). Only that: `train` is the shared entrypoint's."""
