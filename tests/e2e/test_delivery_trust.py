"""test_delivery_trust — under which account local deliveries run and which local files they
trust (issue 7, "Delivery runs as the right account"; doc/LOCAL.md "Accounts and trust"):

- alias `|program` and `/file` targets of the (root-owned) aliases file run as `defaultprivs`
  (nobody), never as a role account, so such a program cannot use ternctl's admin rights;
- `defaultprivs` naming a role account (`user`, `queueuser`) refuses to start (exit 78);
- aliases files writable by group or others (or not owned by root) and `:include:` files
  writable by group or others defer their recipients with `event=alias_unsafe`; programs of
  an include file run as its owner, or as defaultprivs when root or a role account owns it;
- a `.qmail` owned by someone else, or group-writable with a shared group, defers;
  `dotqmailcheck qmail` restores qmail-local's rule (only world-writable defers).

Runs as root (the accounts are real): skipped otherwise. Every wait is bounded.
Owns: its temporary directories. Trusts: the Tern fixture (conftest.py).
"""
import os
import pwd

import pytest

from conftest import REPO, TernError, wait_for

TERNCTL = REPO / "build" / "tbin" / "ternctl"
NOBODY = pwd.getpwnam("nobody")
OTHER_UID = 4242                  # an account that is neither the user nor the home's owner

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: real accounts")


def role_uids(t):
    out = set()
    for key, dflt in (("user", "_tern"), ("queueuser", "_ternq")):
        try:
            out.add(pwd.getpwnam(t.config.get(key, dflt)).pw_uid)
        except KeyError:
            pass
    return out


def alias_tern(make_tern, aliases_text, mode=0o644, config=None, users=None):
    """A ternd with users joe (and more) and a root-owned aliases file; not started."""
    t = make_tern(users=users or {"joe": None}, start=False, config=config)
    drop = t.dir / "drop"
    drop.mkdir()
    os.chmod(drop, 0o777)
    aliases = t.dir / "aliases"
    aliases.write_text(aliases_text.format(drop=drop, dir=t.dir, conf=t.conf,
                                           ternctl=TERNCTL))
    os.chmod(aliases, mode)
    t.config["aliases"] = f"file:{aliases}"
    return t, drop, aliases


def send(t, rcpt, body=b"Subject: trust\r\n\r\nbody\r\n"):
    """One message over SMTP; returns the RCPT reply code (250 = then sent)."""
    with t.smtp() as c:
        assert c.cmd("HELO t")[0] == 250
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        code, lines = c.cmd(f"RCPT TO:<{rcpt}>")
        if code == 250:
            assert c.cmd("DATA")[0] == 354
            c.send(body + b".\r\n")
            assert c.reply()[0] == 250
        c.cmd("QUIT")
        return code


def rcpt_code(t, rcpt):
    with t.smtp() as c:
        assert c.cmd("HELO t")[0] == 250
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        return c.cmd(f"RCPT TO:<{rcpt}>")[0]


def log_lines(t, *needles):
    return [ln for ln in t.log().splitlines() if all(n in ln for n in needles)]


def deferred(t, rcpt, text):
    return wait_for(lambda: log_lines(t, "event=delivery ", f"rcpt=<{rcpt}>",
                                      "status=deferred", text), 20)


# ----------------------------------------------------------------------------- defaultprivs

def test_alias_program_and_file_run_as_defaultprivs_without_admin_rights(make_tern):
    """The attack of the issue: an alias program in the root-owned aliases file ran as
    `_tern` and steered the queue through ternctl (`schedule all`, a write right). Now it
    runs as nobody and ternctl refuses."""
    t, drop, _ = alias_tern(make_tern,
                            'prog: "|id -u > {drop}/uid; TERN_CONF={conf} {ternctl} schedule all '
                            '> {drop}/hold 2>&1; echo rc=$? >> {drop}/hold"\n'
                            "box: {drop}/box\n")
    t.start()
    assert send(t, "prog@localhost") == 250
    assert send(t, "box@localhost") == 250
    hold = drop / "hold"
    assert wait_for(lambda: hold.exists() and "rc=" in hold.read_text(), 20), t.log_tail()
    uid = int((drop / "uid").read_text())
    assert uid == NOBODY.pw_uid and uid not in role_uids(t), uid
    assert "rc=0" not in hold.read_text(), hold.read_text()      # no admin rights
    assert not log_lines(t, "event=admin_op"), t.log_tail()
    box = drop / "box"
    assert wait_for(lambda: box.exists() and b"body" in box.read_bytes(), 20), t.log_tail()
    assert box.stat().st_uid == NOBODY.pw_uid


@pytest.mark.parametrize("key", ["user", "queueuser"])
def test_defaultprivs_naming_a_role_account_refuses_to_start(make_tern, key):
    t = make_tern(start=False)
    t.config["defaultprivs"] = t.config.get(key, {"user": "_tern", "queueuser": "_ternq"}[key])
    with pytest.raises(TernError):
        t.start(timeout=5)
    assert t.proc.wait(5) == 78
    assert "defaultprivs" in t.log() and key in t.log(), t.log_tail()


def test_defaultprivs_root_refuses_to_start(make_tern):
    """Not a role's name, but uid 0: refused all the same (exit 78, the line named)."""
    t = make_tern(start=False, config={"defaultprivs": "root"})
    with pytest.raises(TernError):
        t.start(timeout=5)
    assert t.proc.wait(5) == 78
    assert log_lines(t, "tern.conf:", "defaultprivs: 'root' is root (uid 0)"), t.log_tail()


# ----------------------------------------------------------------------------- aliases files

@pytest.mark.parametrize("mode,owner,reason", [
    (0o666, 0, "reason=world_writable"),
    (0o664, 0, "reason=group_writable"),
    (0o644, OTHER_UID, "reason=bad_owner"),
])
def test_unsafe_aliases_file_defers(make_tern, mode, owner, reason):
    t, _, aliases = alias_tern(make_tern, "team: joe\n", mode=mode)
    os.chown(aliases, owner, 0)
    t.start()
    assert rcpt_code(t, "team@localhost") == 451
    lines = log_lines(t, "event=alias_unsafe", f"path={aliases}", reason)
    assert lines, t.log_tail()
    os.chown(aliases, 0, 0)                   # made safe: re-read (ctime changed) and used
    os.chmod(aliases, 0o644)
    assert wait_for(lambda: rcpt_code(t, "team@localhost") == 250, 10), t.log_tail()


def test_group_writable_include_defers(make_tern):
    t, drop, _ = alias_tern(make_tern, "list: :include:{dir}/list\n")
    lst = t.dir / "list"
    lst.write_text("joe\n")
    os.chmod(lst, 0o664)
    t.start()
    assert rcpt_code(t, "list@localhost") == 451
    assert log_lines(t, "event=alias_unsafe", f"path={lst}", "reason=group_writable"), \
        t.log_tail()
    os.chmod(lst, 0o644)
    assert rcpt_code(t, "list@localhost") == 250
    assert send(t, "list@localhost") == 250
    t.wait_delivered("joe", 1)


def test_include_programs_run_as_the_include_owner_or_defaultprivs(make_tern):
    """sendmail's rule: an include file's programs run as its owner; root or a role account
    owning it means defaultprivs (a role account must never run a program)."""
    daemon = pwd.getpwnam("daemon")
    t, drop, _ = alias_tern(make_tern, "mine: :include:{dir}/mine\nrole: :include:{dir}/role\n")
    users = t.dir / "users"                    # the include owner is an account ternd knows
    users.write_text(users.read_text() +
                     f"daemon:{daemon.pw_uid}:{daemon.pw_gid}:{t.mail / 'daemon'}\n")
    for name in ("mine", "role"):
        f = t.dir / name
        f.write_text(f'"|id -u > {drop}/{name}"\n')
        os.chmod(f, 0o644)
    os.chown(t.dir / "mine", daemon.pw_uid, daemon.pw_gid)
    role = pwd.getpwnam(t.config.get("user", "_tern"))
    os.chown(t.dir / "role", role.pw_uid, role.pw_gid)
    t.start()
    assert send(t, "mine@localhost") == 250
    assert send(t, "role@localhost") == 250
    for name, want in (("mine", daemon.pw_uid), ("role", NOBODY.pw_uid)):
        out = drop / name
        assert wait_for(lambda: out.exists() and out.read_text().strip(), 20), t.log_tail()
        assert int(out.read_text()) == want, (name, out.read_text())


# ----------------------------------------------------------------------------- .qmail

def qmail_tern(make_tern, owner, group, mode, check=None):
    t = make_tern(users={"joe": None}, start=False,
                  config={"dotqmailcheck": check} if check else None)
    home = t.mail / "joe"
    dq = home / ".qmail"
    dq.write_text("./Maildir/\n")
    os.chown(dq, owner, group)
    os.chmod(dq, mode)
    t.start()
    return t


@pytest.mark.parametrize("owner,group,mode,text", [
    (OTHER_UID, NOBODY.pw_gid, 0o644, "is owned by uid 4242"),
    (NOBODY.pw_uid, 0, 0o664, "group-writable"),       # group root has another member: root
])
def test_unsafe_dotqmail_defers_and_qmail_rule_lets_it_through(make_tern, owner, group, mode,
                                                                text):
    t = qmail_tern(make_tern, owner, group, mode)
    assert send(t, "joe@localhost") == 250
    assert deferred(t, "joe@localhost", text), t.log_tail()
    assert t.maildir("joe") == []
    t.stop()
    loose = qmail_tern(make_tern, owner, group, mode, check="qmail")
    assert send(loose, "joe@localhost") == 250
    loose.wait_delivered("joe", 1)
