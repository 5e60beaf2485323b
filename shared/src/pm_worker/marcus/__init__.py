"""The Marcus dialect: how pm_worker talks to upstream Marcus (lwgray/marcus 0.3.8).

Marcus speaks the same four tools as the stub in a different dialect (docs/marcus.md).
Each module holds one piece of that translation, none of them does I/O on the wire:

- `detect`: which dialect a server speaks, from its `tools/list`.
- `payload`: a task's inputs, from the `pm-payload` block in its description.
- `answers`: Marcus's JSON answers as `pm_protocol` result models, or typed errors.
- `pacing`: Marcus's lease timings, keep-alive spacing and the jittered retry hint.
- `state`: what Marcus cannot keep for us (the held task, checkpoints), in a local store.
"""
