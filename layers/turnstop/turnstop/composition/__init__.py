"""The composition root: where every function (and the local runtime) builds its turn runner,
the model behind each turn chosen by its route (``runners``). It sits above everything else in
the layer: it alone knows the runtime, the providers and a dialect's agent together."""

from turnstop.composition.runners import models, turn_runner

__all__ = ["models", "turn_runner"]
