"""Scenes, not patches: a georeferenced raster classified tile by tile.

* :mod:`.pipeline`: the tile grid, the reader thread and bounded queue, batched inference.
* :mod:`.outputs`: ``classes.tif`` (the decision map), ``tiles.geojson``, ``quicklook.png``.
* :mod:`.sensors`: sensor pixel rates (Sentinel-2 MSI, Landsat OLI, a PlanetScope-class imager)
  and the real-time factor.

The use case (options, backend choice, ``downlink.json``) is :mod:`eo_edge.app.scene`; reading
rasters is :mod:`eo_edge.data.raster`'s.
"""
