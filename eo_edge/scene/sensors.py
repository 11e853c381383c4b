"""The sensors a scene run is held against: how many pixels per second each one delivers.

A push-broom imager delivers ``swath / pixel`` pixels per line and ``ground speed / pixel`` lines
per second, so its pixel rate is ``swath x ground speed / pixel area`` (one band grid). The
ground-track speed of a circular orbit at altitude ``h`` is ``sqrt(mu / (R + h)) x R / (R + h)``
(orbital speed projected onto the surface; Earth's rotation neglected, < 7 % at these
inclinations), with ``mu`` = 398,600.4418 km^3/s^2 (WGS 84 GM) and ``R`` = 6,371.0 km (mean radius).

The real-time factor of a run is its pixel throughput over the sensor's pixel rate: >= 1.0 keeps up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import EOEdgeError

MU_KM3_S2 = 398_600.4418  # Earth's gravitational parameter (WGS 84)
EARTH_RADIUS_KM = 6_371.0  # mean Earth radius (IUGG)


@dataclass(frozen=True)
class Sensor:
    """One imager: ``pixel_m`` ground pixel (m), ``swath_km``, orbit ``altitude_km``, and where those come from."""

    name: str
    title: str
    pixel_m: float
    swath_km: float
    altitude_km: float
    source: str

    @property
    def ground_speed_km_s(self) -> float:
        """Ground-track speed of the circular orbit (km/s)."""
        r = EARTH_RADIUS_KM + self.altitude_km
        return math.sqrt(MU_KM3_S2 / r) * EARTH_RADIUS_KM / r

    @property
    def area_rate_km2_s(self) -> float:
        """Area imaged per second, km^2/s (swath x ground speed)."""
        return self.swath_km * self.ground_speed_km_s

    @property
    def pixel_rate_mpx_s(self) -> float:
        """Pixels delivered per second on one band grid, megapixels/s (area rate / pixel area)."""
        return self.area_rate_km2_s * 1e6 / (self.pixel_m ** 2) / 1e6

    def record(self) -> dict:
        """JSON-able: the inputs, the derived speed and rates, the source."""
        return {"name": self.name, "title": self.title, "pixel_m": self.pixel_m, "swath_km": self.swath_km,
                "altitude_km": self.altitude_km, "ground_speed_km_s": round(self.ground_speed_km_s, 4),
                "area_rate_km2_s": round(self.area_rate_km2_s, 2), "pixel_rate_mpx_s": round(self.pixel_rate_mpx_s, 3),
                "source": self.source}


SENSORS: dict[str, Sensor] = {s.name: s for s in (
    Sensor("sentinel-2-msi", "Sentinel-2 MSI, 10 m bands", 10.0, 290.0, 786.0,
           "ESA Sentinel-2 User Handbook (2015), sections 1.1 and 2.2: 290 km swath, 786 km mean orbit altitude; "
           "10 m bands B02, B03, B04, B08"),
    Sensor("landsat-oli", "Landsat 8/9 OLI, 30 m multispectral", 30.0, 185.0, 705.0,
           "USGS Landsat 8 (L8) Data Users Handbook v5.0 (2019), section 1: 185 km swath, 705 km orbit; "
           "30 m multispectral bands (Landsat 9 OLI-2: same orbit, swath and pixel)"),
    Sensor("planetscope", "PlanetScope-class 3 m imager (SuperDove)", 3.0, 32.5, 475.0,
           "Planet Imagery Product Specifications (2023), PlanetScope: 3.0 m orthorectified pixel, "
           "SuperDove frame 32.5 km x 19.6 km across track, sun-synchronous orbits of about 475-525 km (lower bound taken)"),
)}
DEFAULT_SENSOR = "sentinel-2-msi"


def get_sensor(name: str) -> Sensor:
    """The sensor called ``name``.

    Raises:
        EOEdgeError: unknown name (one line listing the known ones).
    """
    if name not in SENSORS:
        raise EOEdgeError(f"unknown --sensor {name!r}; known: {', '.join(SENSORS)}")
    return SENSORS[name]


def realtime_factors(mpx_s: float) -> dict[str, float]:
    """``{sensor name: mpx_s / its pixel rate}`` for every sensor of :data:`SENSORS`."""
    return {n: mpx_s / s.pixel_rate_mpx_s for n, s in SENSORS.items()}
