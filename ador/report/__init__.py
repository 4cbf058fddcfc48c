"""Report layer: renders data computed elsewhere (plots and tables); computes nothing of the model."""
