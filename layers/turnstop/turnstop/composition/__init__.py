"""The composition root: where every function (and the local runtime) builds its turn runner,
the model behind each turn chosen by its route (``runners``), and where a dialect's function
builds the app it serves (``apps``). It sits above everything else in the layer: it alone knows
the runtime, the providers and a dialect's agent together."""

from turnstop.composition.apps import FunctionApp, function_app
from turnstop.composition.runners import models, turn_runner

__all__ = ["FunctionApp", "function_app", "models", "turn_runner"]
