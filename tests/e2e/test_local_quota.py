"""test_local_quota — Maildir++ quotas of users-table users and the 90 % warning
(doc/LOCAL.md "Quotas"), tern-local run directly as test_local_ldap.py runs it (whose Env
this file borrows): -Q SIZE,COUNT,DAYS,TEXT as the mda passes it, and the `table=1` profile
that carries a users-file line's own quota.
Run as root: /usr/bin/python3 -m pytest tests/e2e/test_local_quota.py
"""
import os
import re
import shutil
import time

import pytest

from localhome import chown_tree
from test_local_ldap import BIN, Env, HEAD, MSG, esc

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to uid 65534"),
    pytest.mark.skipif(not os.path.exists(BIN), reason="tern-local not built"),
]

N = len(HEAD) + len(MSG)
WARN = "Your mailbox is almost full, please clean up."


@pytest.fixture
def env():
    e = Env()
    e.store = e.p("Maildir") + "/"
    yield e
    shutil.rmtree(e.root, ignore_errors=True)


def run(env, quota, prof=None, **kw):
    return env.run(prof, aliasempty="./Maildir/", quota=quota, **kw)


def mdsize(env):
    return open(env.p("Maildir", "maildirsize")).read()


def mails(env):
    d = env.p("Maildir", "new")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_default_limits_apply_to_table_users(env):
    # quotadefaultsize (-Q's first number) for a user without a profile
    env.maildir()
    rc, line = run(env, "%d,0,0," % (2 * N))
    assert (rc, line) == (0, "delivered to Maildir ./Maildir/")
    assert mdsize(env) == "%dS\n0 0\n%d 1\n" % (2 * N, N)
    assert mails(env)[0].endswith(",S=%d" % N)        # Maildir++ size in the name
    assert run(env, "%d,0,0," % (2 * N))[0] == 0
    rc, line = run(env, "%d,0,0," % (2 * N))          # quotabounce 0: at once
    assert rc == 100 and "(#5.2.2)" in line, line
    rc, line = run(env, "%d,0,3," % (2 * N))          # quotabounce 3 days: deferred
    assert rc == 111 and "(#4.2.2)" in line, line
    assert len(mails(env)) == 2


def test_no_limits_no_maildirsize(env):
    env.maildir()
    assert run(env, "0,0,5,")[0] == 0
    assert not os.path.exists(env.p("Maildir", "maildirsize"))
    assert "," not in mails(env)[0]                   # plain qmail name without a quota


def test_table_profile_quota_wins_and_is_not_a_directory_user(env):
    # the users line's own quota (route.c: a table=1 profile) beats the default keys, and
    # the user's .qmail still decides the deliveries (no directory dot mode)
    env.maildir()
    env.write(".qmail", "./Maildir/\n")
    chown_tree(env.home)
    prof = "quotacount=1 table=1"
    assert run(env, "1000000,0,0,", prof)[0] == 0
    assert mdsize(env) == "1C\n0 0\n%d 1\n" % N
    rc, line = run(env, "1000000,0,0,", prof)
    assert rc == 100 and "(#5.2.2)" in line, line
    rc, line = run(env, "1000000,0,1,", prof)
    assert rc == 111 and "(#4.2.2)" in line, line
    rc, line = run(env, "1000000,0,1,", prof, age=2 * 86400)
    assert rc == 100 and "(#5.2.2)" in line, line
    assert len(mails(env)) == 1


def test_quotabounce_age_from_arrival_option(env):
    # -A (the queue's arrival time, passed by the mda) decides the age, not the file's mtime
    env.maildir()
    q = "%d,0,1," % (N - 1)                              # always over; quotabounce 1 day
    rc, line = run(env, q)                               # fresh file, no -A: deferred
    assert rc == 111 and "(#4.2.2)" in line, line
    old = str(int(time.time()) - 2 * 86400)
    rc, line = run(env, q, opts=("-A", old))             # arrived 2 days ago: bounced
    assert rc == 100 and "(#5.2.2)" in line, line
    rc, line = run(env, q, opts=("-A", str(int(time.time()))), age=2 * 86400)
    assert rc == 111 and "(#4.2.2)" in line, line        # -A wins over an old mtime
    rc, line = run(env, q, age=2 * 86400)                # the fallback without -A
    assert rc == 100 and "(#5.2.2)" in line, line
    for bad in ("", "x", "-5", "1.5", "99999999999999999999"):
        rc, line = run(env, q, opts=("-A", bad))
        assert rc == 111 and "bad arrival time" in line, (bad, line)
    assert mails(env) == []


def test_bad_quota_argument_defers(env):
    env.maildir()
    for bad in ("", "1,2", "x,0,0,", "-1,0,0,"):
        rc, line = run(env, bad)
        assert rc == 111 and "bad quota argument" in line and "(#4.3.0)" in line, (bad, line)
    assert mails(env) == []


def set_usage(env, limit, used, count=1):
    env.write("Maildir/maildirsize", "%dS\n%d %d\n" % (limit, used, count), mode=0o600)
    chown_tree(env.p("Maildir"))


def warnings(env):
    out = []
    for f in mails(env):
        data = open(env.p("Maildir", "new", f), "rb").read()
        if b"Subject: Warning: your mailbox is almost full" in data:
            out.append((f, data))
    return out


def test_warning_at_90_percent_once_per_day(env):
    env.maildir()
    limit = 100000
    q = "%d,0,0,%s" % (limit, WARN)
    set_usage(env, limit, 80000)
    rc, line = run(env, q)                            # 80 % after it: no warning
    assert rc == 0 and "warning" not in line, line
    assert warnings(env) == []
    set_usage(env, limit, 90000 - N)
    rc, line = run(env, q)                            # reaches 90 %: warned
    assert rc == 0 and "quota warning written" in line, line
    w = warnings(env)
    assert len(w) == 1
    name, data = w[0]
    assert data.endswith(("\n" + WARN + "\n").encode()) and b"From: Mail Delivery" in data
    head = data.split(b"\n\n", 1)[0].decode()      # a proper RFC 5322 message to the user
    assert "\nTo: <joe@example.org>\n" in head, head
    assert re.search(r"\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\n", head), head
    assert re.search(r"\nMessage-ID: <[^<>@ ]+@example\.org>\n", head), head
    assert name.endswith(",S=%d" % len(data))
    lines = mdsize(env).splitlines()
    assert lines[-2:] == ["%d 1" % N, "%d 1" % len(data)]   # the warning counts too
    rc, line = run(env, q)                            # again within 24 h: nothing
    assert rc == 0 and "warning" not in line, line
    assert len(warnings(env)) == 1
    old = time.time() - 25 * 3600                     # a day later: once more
    os.utime(env.p("Maildir", "quotawarn"), (old, old))
    rc, line = run(env, q)
    assert rc == 0 and "quota warning written" in line, line
    assert len(warnings(env)) == 2


def test_no_warning_without_text(env):
    env.maildir()
    set_usage(env, 100000, 95000)
    rc, line = run(env, "100000,0,0,")
    assert rc == 0 and "warning" not in line, line
    assert not os.path.exists(env.p("Maildir", "quotawarn"))
    assert len(mails(env)) == 1


def test_warning_by_count_for_directory_users(env):
    # the warning follows whichever limit, and directory users get it too
    env.maildir()
    prof = "store=%s dotmode=ldaponly quotacount=10" % esc(env.store)
    env.write("Maildir/maildirsize", "10C\n0 8\n", mode=0o600)
    chown_tree(env.p("Maildir"))
    rc, line = env.run(prof, quota="0,0,0," + WARN)
    assert rc == 0 and "quota warning written" in line, line
    assert len(warnings(env)) == 1


# --- through a whole ternd: SMTP -> over quota -> deferred -> room -> delivered on flush ----

def ternd_send(t, rcpt, subject):
    import smtplib
    with smtplib.SMTP(t.addr, t.port, timeout=15) as s:
        s.sendmail("alice@example.org", [rcpt], f"Subject: {subject}\r\n\r\nbody\r\n".encode())


def delivery_lines(t, *needles):
    return [ln for ln in t.log().splitlines()
            if "event=delivery " in ln and all(n in ln for n in needles)]


def test_ternd_defers_then_delivers_after_quota_raised(make_tern):
    from conftest import REPO, wait_for
    import subprocess
    t = make_tern(users={"joe": None}, config={"quotadefaultcount": "1"})
    ternd_send(t, "joe@localhost", "one")
    t.wait_delivered("joe", 1)
    ternd_send(t, "joe@localhost", "two")
    assert wait_for(lambda: delivery_lines(t, "rcpt=<joe@localhost>", "status=deferred",
                                           "(#4.2.2)"), 20), t.log_tail()
    assert len(t.maildir("joe")) == 1
    md = (t.maildir_path("joe") / "maildirsize").read_text()
    assert md.startswith("1C\n"), md
    # the operator raises the default quota; a flush delivers what waited
    t.stop()
    t.config["quotadefaultcount"] = "5"
    t.write_config()
    t.start()
    env = dict(os.environ, TERN_CONF=str(t.conf))
    subprocess.run([str(REPO / "build" / "tbin" / "ternctl"), "flush"], env=env, timeout=10,
                   capture_output=True)
    msgs = t.wait_delivered("joe", 2)
    assert any(b"Subject: two" in m for m in msgs)
    assert (t.maildir_path("joe") / "maildirsize").read_text().startswith("5C\n")


def test_ternd_age_is_the_arrival_not_the_spool_file(make_tern):
    # the mda passes the request's arrival (-A): a spool data file whose mtime says
    # "3 days old" (touched, copied...) does not bounce a message that arrived just now
    from conftest import REPO, wait_for
    import subprocess
    t = make_tern(users={"joe": None}, config={"quotadefaultcount": "1", "quotabounce": "1"})
    ternd_send(t, "joe@localhost", "one")
    t.wait_delivered("joe", 1)
    ternd_send(t, "joe@localhost", "two")
    assert wait_for(lambda: delivery_lines(t, "rcpt=<joe@localhost>", "status=deferred",
                                           "(#4.2.2)"), 20), t.log_tail()
    old = time.time() - 3 * 86400
    data = [os.path.join(d, f) for d, _, fs in os.walk(t.spool) for f in fs
            if os.path.isfile(os.path.join(d, f)) and b"Subject: two" in
            open(os.path.join(d, f), "rb").read()]
    assert data, "the spool's data file of message two"
    for f in data:
        os.utime(f, (old, old))
    env = dict(os.environ, TERN_CONF=str(t.conf))
    subprocess.run([str(REPO / "build" / "tbin" / "ternctl"), "flush"], env=env, timeout=10,
                   capture_output=True)
    assert wait_for(lambda: len(delivery_lines(t, "rcpt=<joe@localhost>", "status=deferred",
                                               "(#4.2.2)")) >= 2, 20), t.log_tail()
    assert not delivery_lines(t, "rcpt=<joe@localhost>", "status=bounced")


def test_ternd_users_line_quota_and_quotabounce_0_bounces(make_tern):
    from conftest import wait_for
    t = make_tern(users={"joe": None}, config={"quotabounce": "0"}, start=False)
    users = t.dir / "users"
    users.write_text(users.read_text().rstrip("\n") + "::1C\n")     # the 6th field
    t.start()
    ternd_send(t, "joe@localhost", "one")
    t.wait_delivered("joe", 1)
    assert (t.maildir_path("joe") / "maildirsize").read_text().startswith("1C\n")
    ternd_send(t, "joe@localhost", "two")
    assert wait_for(lambda: delivery_lines(t, "rcpt=<joe@localhost>", "status=bounced",
                                           "(#5.2.2)"), 20), t.log_tail()
    assert not delivery_lines(t, "rcpt=<joe@localhost>", "status=deferred")
    assert len(t.maildir("joe")) == 1


# --- Dovecot's quota plugin reads (and writes) the same maildirsize --------------------------

DOVECOT_IMAP = "/usr/lib/dovecot/imap"
DOVECOT_CONF = """ssl = no
protocols =
base_dir = {root}/dv-run
log_path = {root}/dovecot.log
mail_location = maildir:~/Maildir
mail_plugins = quota
plugin {{
  quota = maildir:User quota
  quota_rule = *:storage={size}B:messages={count}
}}
protocol imap {{
  mail_plugins = $mail_plugins imap_quota
}}
"""


def imap(env, conf, script):
    """Dovecot's imap binary in PREAUTH mode as the user (no daemon): script lines in, the
    whole transcript out"""
    import subprocess
    args = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "-i",
            "USER=joe", "HOME=" + env.home, DOVECOT_IMAP, "-c", conf]
    r = subprocess.run(args, input=script.encode(), capture_output=True, timeout=20)
    return r.stdout.decode(errors="replace")


def dovecot_quota(env, conf):
    out = imap(env, conf, "a GETQUOTAROOT INBOX\r\nb LOGOUT\r\n")
    m = re.search(r"\(STORAGE (\d+) (\d+) MESSAGE (\d+) (\d+)\)", out)
    assert m, out
    return tuple(int(x) for x in m.groups())


@pytest.mark.skipif(not os.path.exists(DOVECOT_IMAP), reason="dovecot-imapd not installed")
def test_dovecot_reads_and_extends_the_same_maildirsize(env):
    size, count = 100000, 3
    conf = os.path.join(env.root, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(DOVECOT_CONF.format(root=env.root, size=size, count=count))
    os.chmod(conf, 0o644)
    env.maildir()
    q = "%d,%d,0," % (size, count)
    assert run(env, q)[0] == 0                              # tern-local writes it
    assert mdsize(env) == "%dS,%dC\n0 0\n%d 1\n" % (size, count, N)
    # Dovecot reads the usage from it: a fake line it could not have counted shows up
    with open(env.p("Maildir", "maildirsize"), "a") as f:
        f.write("2048 0\n")
    kb = -(-(N + 2048) // 1024)
    assert dovecot_quota(env, conf) == (kb, -(-size // 1024), 1, count)
    # Dovecot appends a message over IMAP (stored with LF line ends) and its line to the
    # file; tern-local counts it
    msg = "Subject: via imap\r\n\r\nhello\r\n"
    out = imap(env, conf, "a APPEND INBOX {%d+}\r\n%s\r\nb LOGOUT\r\n" % (len(msg), msg))
    assert "a OK" in out, out
    lines = mdsize(env).splitlines()
    assert lines[0] == "%dS,%dC" % (size, count) and lines[-1] == "%d 1" % len(msg.replace("\r\n", "\n")), lines
    assert run(env, q)[0] == 0                              # the third message: full
    rc, line = run(env, q)
    assert rc == 100 and "(#5.2.2)" in line, line          # tern-local saw Dovecot's line
    assert dovecot_quota(env, conf)[2:] == (3, count)
