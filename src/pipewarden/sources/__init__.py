"""Where batches come from: files (``pipewarden.batch`` reads them) and HTTP APIs
(:mod:`.http`: paged, incremental, driven by the adaptive controller, its cursor kept in the
store in the same transaction as the batch it produced)."""
