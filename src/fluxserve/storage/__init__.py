"""Where input and output files live."""
