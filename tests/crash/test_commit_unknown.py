"""tests/crash/test_commit_unknown.py — when the smtp role cannot know whether a commit
happened (the queue role died, or the channel closed, after M_MSG_COMMIT was sent and
before M_MSG_COMMITTED arrived), the client gets no reply at all: the connection closes
(doc/QUEUE.md, the SMTP duplicate window). Never a 4xx: the message is delivered anyway
(the envelope was renamed), and a client told 451 would send it again — a duplicate.

The test build's crash points kill the queue role inside the commit, after the rename."""
import smtplib
import uuid

import pytest
from tern_e2e_conftest import wait_for


@pytest.mark.parametrize("point", ["queue:after_rename", "queue:after_commit"])
def test_unknown_commit_outcome_closes_without_reply(make_tern, point):
    tern = make_tern(env={"TERN_CRASHPOINT": point})
    tag = uuid.uuid4().hex
    body = f"Subject: unknown outcome\r\nMessage-ID: <{tag}@test>\r\n\r\nbody {tag}\r\n"
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
        s.ehlo()
        s.mail("a@example.org")
        s.rcpt("joe@localhost")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            code, text = s.data(body.encode())
            pytest.fail(f"the final dot was answered {code} {text!r}; the outcome of the "
                        f"commit was unknown: the connection must close without a reply")
    assert f"event=crashpoint name={point}" in tern.log()
    # the envelope had been renamed: the restarted queue delivers it (at least once)
    assert wait_for(lambda: any(tag.encode() in m for m in tern.maildir("joe")), 40), \
        tern.log_tail()
    assert "code=451" not in tern.log() and "code=421" not in tern.log(), tern.log_tail()
