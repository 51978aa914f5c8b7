"""An example framework-module package for the custom-framework image, in the manner of AWS's
`custom_framework_training`: configure the framework, then run the user's program."""
