"""What restore_node says on /diagnostics: one status for the restoration and one per camera.

Status names start with the node's fully qualified name and use resolved (remapped) topic
names, so two nodes never merge in diagnostic_aggregator or rqt_robot_monitor; the level is
honest: an inactive node or a refused parameter change is not OK "restoring".
"""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue


def restoration_level(health: dict, *, active: bool, new_problems: int, worker_error: str = "",
                      refused: str = "") -> tuple[bytes, str]:
    """(level, message) of the restoration status; the worst condition wins."""
    if worker_error or not health.get("alive", True):
        return DiagnosticStatus.ERROR, "frame worker or prior refresher stopped"
    if refused:
        return DiagnosticStatus.WARN, f"parameter change refused: {refused}"
    if not active:
        return DiagnosticStatus.WARN, "inactive: configured, not restoring until activated"
    if health.get("consecutive_failures"):
        return DiagnosticStatus.WARN, f"prior provider failing: {health['last_error']}"
    if new_problems:
        return DiagnosticStatus.WARN, f"{new_problems} bad or failed frames since last report"
    return DiagnosticStatus.OK, "restoring"


def camera_level(*, active: bool, new_problems: int) -> bytes:
    """A camera is OK while active and its frames since the last report were all usable."""
    return DiagnosticStatus.OK if active and not new_problems else DiagnosticStatus.WARN


def status(name: str, level: bytes, message: str, hardware_id: str,
           values: dict) -> DiagnosticStatus:
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
