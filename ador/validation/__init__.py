"""Validation: the model against measured hardware and serving systems, and the calibration of GPU
efficiencies and runtime profiles on public measurements."""
