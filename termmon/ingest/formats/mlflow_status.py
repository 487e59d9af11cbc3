"""MLflow's run status (``RunStatus``), as both of its stores record it, and how it reads in termmon.

The file store writes the number in ``meta.yaml`` (1 running, 3 finished, 4 failed); the sqlite
store writes the name in ``runs.status``. A run still RUNNING (or SCHEDULED) has no end record.
"""

from __future__ import annotations

from termmon.format import END_CRASHED, END_FINISHED

RUNNING, SCHEDULED, FINISHED, FAILED, KILLED = 1, 2, 3, 4, 5
BY_NAME = {
    "RUNNING": RUNNING,
    "SCHEDULED": SCHEDULED,
    "FINISHED": FINISHED,
    "FAILED": FAILED,
    "KILLED": KILLED,
}
#: The end record's status for each finished state (DESIGN.md): KILLED is a stop by the user.
END_STATUS = {FINISHED: END_FINISHED, FAILED: END_CRASHED, KILLED: "killed"}
#: ``lifecycle_stage`` of a run or experiment the user deleted (MLflow's UI hides them; so does termmon).
DELETED = "deleted"
