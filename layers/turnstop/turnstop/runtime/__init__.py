"""What a running turn uses: claim it, emit events, checkpoint, finish.

The cancel check lives inside these calls: every commit that publishes a step is a
conditional write that fails once a cancel is requested, so turn code never polls a flag.
``active`` holds the handle turn code writes through, ``runner`` runs one turn from claim to
finish, ``model`` is the model interface, ``renderer`` the dialects' event vocabulary.
"""

__all__ = ["active", "keeper", "live", "model", "renderer", "runner"]
