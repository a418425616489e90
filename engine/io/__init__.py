"""Files: model-file schema (torch-free), model / checkpoint artifacts, classification rasters, reports."""
