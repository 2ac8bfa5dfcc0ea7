"""Build the rule objects of one camera from its configuration."""

from __future__ import annotations

from core.config import CameraConfig
from core.rule_config import (
    CrowdingRule,
    IllegalParkingRule,
    IntrusionRule,
    LineCrossingRule,
    LoiteringRule,
    RuleConfig,
    SpeedingRule,
    TamperRule,
    WrongWayRule,
)
from vision.rules.base import GroundPlane, PixelLine, PixelZone, Rule


class Geometry:
    """A camera's zones, lines and ground plane in the forms rules use."""

    def __init__(self, camera: CameraConfig) -> None:
        self.zones = {z.name: PixelZone(z.name, z.points) for z in camera.zones}
        self.lines = {ln.name: PixelLine(ln.name, ln.points) for ln in camera.lines}
        self.ground = GroundPlane(camera.calibration) if camera.calibration else None


def build_rule(config: RuleConfig, geo: Geometry) -> Rule | None:
    """The rule object, or None for rules that do not run on frames (camera_offline)."""
    if isinstance(config, IntrusionRule):
        from vision.rules.intrusion import IntrusionRule as Intrusion

        return Intrusion(config, geo.zones[config.zone])
    if isinstance(config, LineCrossingRule):
        from vision.rules.line_crossing import LineCrossingRule as LineCrossing

        return LineCrossing(config, geo.lines[config.line])
    if isinstance(config, WrongWayRule):
        from vision.rules.wrong_way import WrongWayRule as WrongWay

        return WrongWay(config, geo.zones[config.zone], geo.ground)
    if isinstance(config, LoiteringRule):
        from vision.rules.loitering import LoiteringRule as Loitering

        return Loitering(config, geo.zones[config.zone])
    if isinstance(config, IllegalParkingRule):
        from vision.rules.parking import IllegalParkingRule as IllegalParking

        return IllegalParking(config, geo.zones[config.zone], geo.ground)
    if isinstance(config, CrowdingRule):
        from vision.rules.crowding import CrowdingRule as Crowding

        return Crowding(config, geo.zones[config.zone])
    if isinstance(config, SpeedingRule):
        from vision.rules.speeding import SpeedingRule as Speeding

        assert geo.ground is not None  # the config check requires a calibration
        zone = geo.zones[config.zone] if config.zone else None
        return Speeding(config, zone, geo.ground)
    if isinstance(config, TamperRule):
        from vision.rules.tamper import TamperRule as Tamper

        return Tamper(config)
    return None
