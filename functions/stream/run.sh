#!/bin/sh
# Entry point under the Lambda Web Adapter: serve the streaming routes over HTTP on $PORT.
export PYTHONPATH="/opt/python:${LAMBDA_TASK_ROOT}:${PYTHONPATH}"
exec python3 "${LAMBDA_TASK_ROOT}/app.py"
