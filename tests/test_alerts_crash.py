"""A sender killed between apprise's answer and the database update: re-running repeats that one, loses none.

The sender is a real child process. Its script wraps the real ``Sender.send`` so that, right after apprise
returned, it writes a marker file and waits; the test then kills it with SIGKILL — no cleanup, no rollback
handler, exactly as a crash or an OOM kill would. The seam lives here, in the child, not in ``alerts``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from alert_support import Webhook, seed_item, watcher
from sqlalchemy import select

from alerts.dispatch import deliver, plan
from pipelines.db import Database
from pipelines.models import Delivery, DeliveryAttempt
from pipelines.timeutil import utcnow

ROOT = Path(__file__).resolve().parent.parent

# The child: deliver once with the watchers given as JSON; its sender pauses after its first real send,
# once the marker file (argv[3]) is written.
CHILD = """
import json, os, sys, time
from pathlib import Path
from alerts.channels import Sender
from alerts.config import WatcherConfig
from alerts.dispatch import deliver
from pipelines.db import Database

real_send = Sender.send

def send_then_pause(self, channel, message, **kwargs):
    result = real_send(self, channel, message, **kwargs)
    Path(sys.argv[3]).write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(3600)
    return result

Sender.send = send_then_pause
watchers = [WatcherConfig.model_validate(w) for w in json.loads(sys.argv[2])]
deliver(Database(sys.argv[1], create=False), watchers)
"""


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the sender exited ({proc.returncode}) before sending: {err.decode()[-2000:]}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail("the sender never reached its first send")
        time.sleep(0.02)


@pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")  # apprise's import, see render tests
def test_killed_between_send_and_record_repeats_at_most_that_one(
    db: Database, hook: Webhook, tmp_path: Path
) -> None:
    specs = [{"name": "desk", "notify": [hook.url()]}]
    ws = [watcher(**spec) for spec in specs]  # type: ignore[arg-type]
    for title in ("first", "second", "third"):
        seed_item(db, title=title)
    assert plan(db, ws) == 3

    marker = tmp_path / "sent"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    payload = json.dumps(specs)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, db.url, payload, str(marker)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # The webhook got the first alert, the database never heard of it: the row is still `sending`.
    hook.wait_for(1)
    assert hook.titles() == ["[borderwatch] Tren de Aragua: first"]
    with db.read() as s:
        states = [d.state for d in s.scalars(select(Delivery).order_by(Delivery.id))]
        assert states == ["sending", "pending", "pending"]
        assert s.scalars(select(DeliveryAttempt)).all() == []

    # A sender started at once leaves the fresh `sending` row alone (it could be another live sender's) …
    report = deliver(db, ws)
    assert (report.recovered, report.sent) == (0, 2)
    # … and once it is stale (a minute), puts it back to pending and sends it again.
    report = deliver(db, ws, now=utcnow() + timedelta(minutes=2))
    assert (report.recovered, report.sent) == (1, 1)

    counts = Counter(t.rsplit(": ", 1)[1] for t in hook.titles())
    assert counts == {"first": 2, "second": 1, "third": 1}  # one repeated (the one in flight), none lost
    with db.read() as s:
        assert {d.state for d in s.scalars(select(Delivery))} == {"sent"}
        assert len(s.scalars(select(DeliveryAttempt)).all()) == 3
