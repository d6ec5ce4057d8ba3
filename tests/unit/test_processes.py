"""The Dockerfile and docker-compose.yml start the processes as app/processes.py spells them."""

from __future__ import annotations

import json
import re

from app import processes
from tests.support import ROOT


def compose_commands() -> dict[str, list[str]]:
    """`command:` of each service in docker-compose.yml (one-line JSON lists or two-line)."""
    text = (ROOT / "docker-compose.yml").read_text()
    commands: dict[str, list[str]] = {}
    service = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if match := re.match(r"^  ([a-z]+):\s*$", line):
            service = match.group(1)
        if service and (match := re.match(r"^\s+command: (\[.*)$", line)):
            raw = match.group(1)
            j = i
            while not raw.rstrip().endswith("]"):
                j += 1
                raw += " " + lines[j].strip()
            commands[service] = json.loads(raw)
    return commands


def without_options(command: list[str], *names: str) -> list[str]:
    """`command` without each option in `names` and its value."""
    out, skip = [], False
    for word in command:
        if skip:
            skip = False
        elif word in names:
            skip = True
        else:
            out.append(word)
    return out


def test_compose_runs_the_web_app_worker_beat_and_flower_as_processes_py_says():
    commands = compose_commands()
    assert without_options(commands["web"], "-b") == processes.WEB
    assert commands["worker"] == processes.WORKER
    assert without_options(commands["beat"], "--schedule") == processes.BEAT
    assert commands["flower"] == processes.FLOWER


def test_the_image_starts_the_web_app_as_processes_py_says():
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert without_options(cmd, "-b") == processes.WEB


def test_the_worker_command_names_no_queue_so_it_takes_every_queue():
    assert "-Q" not in processes.WORKER and "--queues" not in processes.WORKER
