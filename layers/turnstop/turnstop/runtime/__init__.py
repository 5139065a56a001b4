"""What a running turn uses: claim it, emit events, checkpoint, finish.

The cancel check lives inside these calls: every commit that publishes a step is a
conditional write that fails once a cancel is requested, so turn code never polls a flag.
"""
