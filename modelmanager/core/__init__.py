"""The Qt-free engine: repository, chunk store, codecs, formats, catalog, jobs."""
