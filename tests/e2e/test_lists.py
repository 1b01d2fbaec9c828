"""tests/e2e/test_lists.py — the list channel (issue 10; MMDF's list channel, qmail-group;
doc/LISTS.md) through a whole ternd with a real SMTP client (smtplib): a list address
expands to its members, one copy each, with the List-* header fields and the envelope sender
LIST-owner; a membersonly list refuses a stranger (5.7.2); a message that already went
through the list is stopped (5.4.6); a member's bounce reaches the owner through LIST-owner.
Moderation (qmail-secretary): a moderated list holds the post and asks the moderator, whose
reply to LIST-accept-COOKIE releases it to every member; LIST-reject-COOKIE removes it and
tells the poster; a forged or tampered cookie fails (5.7.1) and releases nothing; a post
nobody approves expires with a notice; sender confirmation works the same way.

Owns: the list directories it writes under the ternd's directory. Trusts: conftest.py."""
import email
import email.policy
import os
import re
import smtplib

from conftest import wait_for

USERS = ("alice", "bob", "carol", "owner", "mod")


def make_list(tern, name="dev", members=("alice@localhost", "bob@localhost"), config="",
              moderators=("mod@localhost",)):
    d = tern.dir / "lists" / name
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(tern.dir / "lists", 0o755)
    os.chmod(d, 0o755)
    (d / "members").write_text("# the members\n" + "".join(m + "\n" for m in members))
    (d / "config").write_text("owner = owner@localhost\n" + config)
    (d / "moderators").write_text("".join(m + "\n" for m in moderators))
    for f in ("members", "config", "moderators"):
        os.chmod(d / f, 0o644)
    return d


def list_tern(make_tern, name="dev", conf=None, **kw):
    tern = make_tern(users={u: None for u in USERS}, start=False, config=conf)
    make_list(tern, name, **kw)
    tern.config["lists"] = f"{name}@localhost:{tern.dir / 'lists' / name}"
    tern.start()
    return tern


def send(tern, sender, rcpt, extra=b""):
    body = (b"From: " + sender.encode() + b"\r\nTo: " + rcpt.encode() + b"\r\n" + extra +
            b"Subject: hello list\r\nMessage-ID: <m1@test>\r\n\r\nhello everyone\r\n")
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
        s.sendmail(sender, [rcpt], body)


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def bounces(tern, user):
    return [m for m in tern.maildir(user) if b"report-type=delivery-status" in m]


def test_list_expands_to_members_with_list_headers(make_tern):
    tern = list_tern(make_tern, members=("alice@localhost", "bob@localhost", "ghost@localhost"))
    send(tern, "carol@localhost", "dev@localhost")
    for u in ("alice", "bob"):
        got = tern.wait_delivered(u, 1)
        m = parse(got[0])
        assert m["Return-Path"] == "<dev-owner@localhost>", got[0]
        assert m["List-Id"] == "<dev.localhost>"
        assert m["List-Post"] == "<mailto:dev@localhost>"
        assert m["List-Owner"] == "<mailto:dev-owner@localhost>"
        assert m["Precedence"] == "list"
        assert "hello everyone" in m.get_content()
    # ghost is no user: its bounce goes to dev-owner, which routes to the owner
    assert wait_for(lambda: bounces(tern, "owner"), 20), tern.log_tail()
    got = bounces(tern, "owner")
    assert b"ghost@localhost" in got[0]
    assert "event=list_expand" in tern.log()
    assert len(tern.maildir("alice")) == 1 and len(tern.maildir("bob")) == 1
    assert tern.maildir("carol") == []


def test_membersonly_refuses_a_stranger(make_tern):
    tern = list_tern(make_tern, config="membersonly = yes\n")
    send(tern, "carol@localhost", "dev@localhost")
    assert wait_for(lambda: bounces(tern, "carol"), 20), tern.log_tail()
    got = bounces(tern, "carol")
    assert b"5.7.2" in got[0]
    # a member may post; after its copy arrives, the stranger's post has gone nowhere
    send(tern, "alice@localhost", "dev@localhost")
    tern.wait_delivered("bob", 1)
    tern.wait_delivered("alice", 1)
    assert len(tern.maildir("bob")) == 1, tern.log_tail()


def test_list_loop_is_stopped(make_tern):
    tern = list_tern(make_tern)
    send(tern, "carol@localhost", "dev@localhost", extra=b"List-Id: Dev <dev.localhost>\r\n")
    assert wait_for(lambda: bounces(tern, "carol"), 20), tern.log_tail()
    got = bounces(tern, "carol")
    assert b"5.4.6" in got[0]
    assert tern.maildir("alice") == [] and tern.maildir("bob") == []


def test_unknown_list_suffix_is_no_user(make_tern):
    tern = list_tern(make_tern)
    with smtplib.SMTP("127.0.0.1", tern.port, timeout=15) as s:
        s.ehlo()
        s.mail("carol@localhost")
        code, _ = s.rcpt("dev-nosuch@localhost")
        assert code == 550
    assert "list dev@localhost (post)" not in tern.log()


def request(tern, user):
    """The moderation (or confirmation) request user got: (message, accept, reject)."""
    got = tern.wait_delivered(user, 1)
    raw = got[-1]
    m = parse(raw)
    accept = m["Reply-To"]
    reject = re.search(rb"(dev-reject-[0-9a-f]{48}@localhost)", raw).group(1).decode()
    assert re.fullmatch(r"dev-accept-[0-9a-f]{48}@localhost", accept), accept
    return m, accept, reject


def queued(tern):
    return sorted(p.name for p in (tern.spool / "env").iterdir())


def test_moderated_list_holds_until_a_moderator_accepts(make_tern):
    tern = list_tern(make_tern, config="moderated = yes\n")
    send(tern, "carol@localhost", "dev@localhost")
    m, accept, _ = request(tern, "mod")
    assert m["From"] == "dev-owner@localhost"
    assert "carol@localhost" in m.get_content() and "hello everyone" in m.get_content()
    # after the request arrived: the post is held, nobody has it
    assert tern.maildir("alice") == [] and tern.maildir("bob") == []
    assert "event=list_hold" in tern.log()
    assert wait_for(lambda: len(queued(tern)) == 1, 20), queued(tern)   # the held copy only
    send(tern, "mod@localhost", accept)
    for u in ("alice", "bob"):
        got = parse(tern.wait_delivered(u, 1)[0])
        assert got["List-Id"] == "<dev.localhost>"
        assert got["Return-Path"] == "<dev-owner@localhost>"
        assert "hello everyone" in got.get_content()
    assert "event=list_accept" in tern.log()
    assert wait_for(lambda: queued(tern) == [], 20), queued(tern)


def test_reject_removes_and_tells_the_poster(make_tern):
    tern = list_tern(make_tern, config="moderated = yes\n")
    send(tern, "carol@localhost", "dev@localhost")
    _, _, reject = request(tern, "mod")
    send(tern, "mod@localhost", reject)
    got = tern.wait_delivered("carol", 1)
    assert b"was not posted" in got[0] and b"a moderator rejected it" in got[0]
    assert wait_for(lambda: queued(tern) == [], 20), queued(tern)
    assert tern.maildir("alice") == [] and tern.maildir("bob") == []


def test_forged_and_tampered_cookies_fail(make_tern):
    tern = list_tern(make_tern, config="moderated = yes\n")
    send(tern, "carol@localhost", "dev@localhost")
    _, accept, _ = request(tern, "mod")
    assert wait_for(lambda: len(queued(tern)) == 1, 20), queued(tern)
    held = queued(tern)
    cookie = accept.split("-")[2].split("@")[0]
    tampered = cookie[:16] + ("0" if cookie[16] != "0" else "1") + cookie[17:]
    forged = "0123456789abcdef" * 3
    for c in (tampered, forged):
        send(tern, "mod@localhost", f"dev-accept-{c}@localhost")
    assert wait_for(lambda: len(bounces(tern, "mod")) == 2, 20), tern.log_tail()
    assert all(b"5.7.1" in b for b in bounces(tern, "mod"))
    assert tern.log().count("event=list_cookie_refused") == 2
    assert queued(tern) == held                             # still held, nothing released
    assert tern.maildir("alice") == []
    # a malformed cookie is no address of the list at all for the queue either
    send(tern, "mod@localhost", "dev-accept-xyz@localhost")
    assert wait_for(lambda: len(bounces(tern, "mod")) == 3, 20), tern.log_tail()


def test_held_post_expires_with_a_notice(make_tern):
    tern = list_tern(make_tern, config="moderated = yes\n", conf={"listmodtimeout": "1"})
    send(tern, "carol@localhost", "dev@localhost")
    request(tern, "mod")
    got = tern.wait_delivered("carol", 1, timeout=30)
    assert b"nobody approved it in time" in got[0]
    assert wait_for(lambda: queued(tern) == [], 20), queued(tern)
    assert "event=list_expire" in tern.log()
    assert tern.maildir("alice") == []


def test_sender_confirmation(make_tern):
    tern = list_tern(make_tern, config="senderconfirm = yes\n")
    send(tern, "carol@localhost", "dev@localhost")
    m, accept, _ = request(tern, "carol")
    assert "confirm" in m["Subject"]
    assert tern.maildir("mod") == [] and tern.maildir("alice") == []
    send(tern, "carol@localhost", accept)
    tern.wait_delivered("alice", 1)
    tern.wait_delivered("bob", 1)


def test_stranger_goes_to_the_moderators_with_holdothers(make_tern):
    tern = list_tern(make_tern, config="membersonly = yes\nholdothers = yes\n")
    send(tern, "alice@localhost", "dev@localhost")          # a member: at once
    tern.wait_delivered("bob", 1)
    assert tern.maildir("mod") == []
    send(tern, "carol@localhost", "dev@localhost")          # a stranger: held
    _, accept, _ = request(tern, "mod")
    send(tern, "mod@localhost", accept)
    assert len(tern.wait_delivered("bob", 2)) == 2


def test_held_post_and_cookie_key_survive_a_restart(make_tern):
    tern = list_tern(make_tern, config="moderated = yes\n")
    send(tern, "carol@localhost", "dev@localhost")
    _, accept, _ = request(tern, "mod")
    key = tern.spool / "listkey"
    assert (key.stat().st_mode & 0o777) == 0o600 and key.stat().st_size == 32
    assert wait_for(lambda: len(queued(tern)) == 1, 20), queued(tern)
    tern.restart()
    assert tern.maildir("alice") == []                      # still held after recovery
    send(tern, "mod@localhost", accept)
    tern.wait_delivered("alice", 1)
    tern.wait_delivered("bob", 1)


def test_verp_copies_name_their_member_and_bounce_to_the_owner(make_tern):
    tern = list_tern(make_tern, config="verp = yes\n",
                     members=("alice@localhost", "bob@localhost", "ghost@localhost"))
    send(tern, "carol@localhost", "dev@localhost")
    for u in ("alice", "bob"):
        m = parse(tern.wait_delivered(u, 1)[0])
        assert m["Return-Path"] == f"<dev-owner-{u}=localhost@localhost>"
        assert m["List-Id"] == "<dev.localhost>"
    assert wait_for(lambda: bounces(tern, "owner"), 20), tern.log_tail()
    got = bounces(tern, "owner")
    assert b"dev-owner-ghost=localhost@localhost" in got[0] and b"ghost@localhost" in got[0]


def test_list_from_a_file_table(make_tern):
    tern = make_tern(users={u: None for u in USERS}, start=False)
    d = make_list(tern)
    table = tern.dir / "lists.map"
    table.write_text(f"# lists\ndev@localhost:{d}\n")
    os.chmod(table, 0o644)
    tern.config["lists"] = f"file:{table}"
    tern.start()
    send(tern, "carol@localhost", "dev@localhost")
    tern.wait_delivered("alice", 1)
    tern.wait_delivered("bob", 1)


def test_membersonly_moderated_list_still_refuses_strangers(make_tern):
    tern = list_tern(make_tern, config="membersonly = yes\nmoderated = yes\n")
    send(tern, "carol@localhost", "dev@localhost")
    assert wait_for(lambda: bounces(tern, "carol"), 20), tern.log_tail()
    assert b"5.7.2" in bounces(tern, "carol")[0]
    send(tern, "alice@localhost", "dev@localhost")          # a member: to the moderator
    request(tern, "mod")
    assert len(tern.maildir("mod")) == 1
