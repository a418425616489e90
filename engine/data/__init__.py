"""Input data: reference grid and windowed reading, training polygons, windows and patches, normalisation."""
