"""`soc-tui export incident` and `soc-tui verify` from the CLI: the report
holds the summary, timeline, alerts, evidence (hostile text made inert),
notes with authors and the verify result with the seal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_triage import _alerts, _run, _story

from soc_tui.cli import main

HOSTILE = ("Nov 20 00:09:00 bastion sshd[7]: Invalid user ``evil`` from 198.51.100.7 port 1"
           " [bold red]x[/] <script>alert(1)</script> | \x1b]0;pwned\x07 \x1b[2J end")


@pytest.fixture
def incident(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, int, dict]:
    db = tmp_path / "soc.db"
    log = _story(tmp_path / "auth.log")
    with open(log, "a") as fh:
        fh.write(HOSTILE + "\n")
    assert main(["--db", str(db), "ingest", "--tz", "UTC", str(log)]) == 0
    alerts = _alerts(db, capsys)
    crit = alerts["ssh_success_after_bruteforce/198.51.100.7"]
    capsys.readouterr()
    assert _run(db, "incidents", "create", "--title", "Break-in <b>on</b> bastion", "--alert",
                str(crit["id"])) == 0
    inc = int(capsys.readouterr().out)
    hostile_id = len(log.read_text().splitlines())
    assert _run(db, "incidents", "pin", str(inc), "--event", str(hostile_id)) == 0
    assert _run(db, "notes", "add", "--incident", str(inc), "--text",
                "Root login confirmed.\n<img src=x onerror=alert(1)>", analyst="bob") == 0
    assert _run(db, "alerts", "ack", str(crit["id"])) == 0
    return db, inc, crit


def test_markdown_report(incident: tuple[Path, int, dict], tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    db, inc, crit = incident
    out = tmp_path / "report.md"
    assert main(["--db", str(db), "export", "incident", str(inc), "-o", str(out)]) == 0
    md = out.read_text()
    assert md.startswith(f"# Incident {inc}: Break\\-in \\<b\\>on\\</b\\> bastion")
    for section in ("## Timeline", "## Alerts", "## Pinned events", "## Notes", "## Integrity"):
        assert section in md
    assert "ssh\\_success\\_after\\_bruteforce" in md and "by bob" in md
    assert "> Root login confirmed." in md and "&lt;img src=x" in md
    # The hostile line: no control character survives, its markup and HTML
    # stay inside code, and its backticks cannot close the code span.
    assert "\x1b" not in md and "\x07" not in md
    assert "\\x1b]0;pwned\\x07" in md
    span = next(line for line in md.splitlines() if "pinned event" in line)
    assert "``` Nov 20" in span or "```Nov 20" in span
    assert re.search(r"\| (acknowledged|ack) \|", md)  # status changes on the timeline
    assert "verify: OK" in md and re.search(r"latest seal: \d+:[0-9a-f]{64}", md)


def test_json_report_and_verify(incident: tuple[Path, int, dict],
                                capsys: pytest.CaptureFixture[str]) -> None:
    db, inc, crit = incident
    capsys.readouterr()
    assert main(["--db", str(db), "export", "incident", str(inc), "--format", "json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["incident"]["severity"] == "critical" and rep["alerts"][0]["id"] == crit["id"]
    assert [e["raw"] for e in rep["events"] if e["pinned"]] == [HOSTILE]  # exact, for archives
    assert {n["author"] for n in rep["notes"]} == {"bob"}
    assert [t["ts"] for t in rep["timeline"]] == sorted(t["ts"] for t in rep["timeline"])
    assert {h["action"] for h in rep["history"]} >= {"create", "link", "pin", "ack"}
    assert any(line.startswith("verify: OK") for line in rep["verify"])

    capsys.readouterr()
    assert main(["--db", str(db), "verify"]) == 0
    seal = re.search(r"latest seal: (\d+:[0-9a-f]{64})", capsys.readouterr().out).group(1)
    assert main(["--db", str(db), "verify", "--seal", seal]) == 0
    assert main(["--db", str(db), "verify", "--seal", "nonsense"]) == 1
    assert main(["--db", str(db), "export", "incident", "999"]) == 1
