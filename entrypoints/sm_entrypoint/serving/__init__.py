"""The shared model server behind `serve`: framework-free, gunicorn pre-fork workers running a
minimal WSGI app. An image adds its framework's defaults through SAGEMAKER_DEFAULT_HANDLERS.

    settings     what the environment asks for (port, workers, timeout, payload limit, script)
    user_script  finding and importing the user's inference.py
    handlers     which hooks answer a request (user's, image defaults, generic codecs)
    codecs       text/csv, application/json, application/x-npy in and out
    errors       the HTTP status each failure answers with
    app          the WSGI app: /ping, /invocations, /execution-parameters
    runner       gunicorn: workers, timeouts, model_fn once per worker, prompt SIGTERM
    multi_model  a multi-model endpoint: load, list, describe, unload; one worker pool per model
    model_api    the multi-model endpoint's management routes (/models), as SageMaker calls them
    memory       what the container may still use, for the 507 a load that cannot fit answers
"""
