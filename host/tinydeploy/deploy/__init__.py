"""The build pipeline, one step after another: repair -> analyze -> golden vectors -> generate, and with
``--arena measured`` generate -> emulate (the firmware's own arena on the emulated Cortex-M4) -> generate again.
The only place where generate and emulate meet; neither imports the other's way back."""
