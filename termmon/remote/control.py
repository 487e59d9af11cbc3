"""control.json on a remote run: read the current one, write the next atomically on the remote side
(a temp file in the run directory, then ``mv``), with the same payload as a local write."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from termmon.control import ControlRequest, control_payload
from termmon.errors import TermmonError
from termmon.format import CONTROL_JSON
from termmon.ingest.discovery import resolve_run
from termmon.remote import registry
from termmon.remote.paths import parse_remote
from termmon.remote.syncer import HostSyncer
from termmon.remote.transport import TransportError


def remote_run_dir(run_dir: Path | str) -> tuple[HostSyncer, str] | None:
    """The host and remote directory of a remote run (typed as ``host:path`` or a mirrored path)."""
    if isinstance(run_dir, str) and parse_remote(run_dir) is not None:
        run_dir = resolve_run(run_dir, prog="termmon control").dir
    return registry.owner(Path(run_dir))


def request_remote(syncer: HostSyncer, directory: str, log_every: int) -> ControlRequest:
    where = syncer.remote.label(directory)
    try:
        current = syncer.read_file(f"{directory}/{CONTROL_JSON}")
        try:
            previous = json.loads(current) if current else None
        except ValueError:
            previous = None
        data, request = control_payload(previous if isinstance(previous, dict) else None, log_every)
        temp_name = f".{CONTROL_JSON}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
        syncer.write_file(directory, CONTROL_JSON, data.decode(), temp_name)
    except TransportError as exc:
        raise TermmonError(f"termmon control: {where}: {exc}") from exc
    return request
