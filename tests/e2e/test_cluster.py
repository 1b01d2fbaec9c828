"""tests/e2e/test_cluster.py — a tern cluster (doc/CLUSTER.md): nodes on 127.0.0.2/.3/.4 that
share one cookie (smtpclustercookie) and one directory.

The loop rules run now, against real nodes and the mta role alone (tests/e2e/mta_driver.c,
whose `cjob` sends a job on channel "cluster" as routing will):
  (a) a node's greeting ends with the cookie;
  (b) an ordinary smtp delivery that meets a node (smtproutes sending a domain to another
      node) fails 5.4.6 and bounces; the node gets nothing;
  (c) a cluster delivery puts one X-Tern-Cluster line in front of the message (counted in
      SIZE), is refused 5.4.6 at ldapclusterhops such lines, defers 4.4.6 at a server that is
      not a node, and never shares a connection with ordinary deliveries.
The full path (a directory user homed on node B, reached through node A by channel
"cluster"; moving the user; node B down and back; each node on its nearest replica; two
directories that disagree) needs the routing side (`users ldap:`, the ldapusers branch): those
tests are SKIPPED while ternd's config check refuses `users ldap:`.

Owns: nothing outside its temporary directories. Trusts: conftest.py, test_mta.py's driver and
aiosmtpd helpers, ldapinst.py (slapd with syncrepl)."""
import email
import email.policy
import os
import re
import smtplib
import subprocess

import pytest

from conftest import TERND, free_port, wait_for
from ldapinst import LdapInstance, ldap_usable, qmail_user
from test_mta import Controller, Recorder, driver, message, run_mta  # noqa: F401 (fixture)

COOKIE = "c00kie-Xy9"
LOOP = "Message is looping within cluster, giving up."
SUFFIX = "dc=example,dc=test"


# --------------------------------------------------------------------------- helpers

@pytest.fixture
def smtpd():
    """smtpd(ident="ESMTP") -> (Recorder, port): an aiosmtpd server on 127.0.0.1 whose
    greeting is "220 mx.test.example IDENT" (IDENT may end with a cookie)."""
    if Controller is None:
        pytest.skip("python3-aiosmtpd is not installed")
    started = []

    def start(ident="ESMTP"):
        rec, port = Recorder(), free_port()
        c = Controller(rec, hostname="127.0.0.1", port=port, server_hostname="mx.test.example",
                       ident=ident, ready_timeout=5.0)
        c.start()
        started.append(c)
        return rec, port

    yield start
    for c in started:
        c.stop()


def cluster_extra(hops=3, cookie=COOKIE):
    return ([f"smtpclustercookie {cookie}"] if cookie else []) + [f"ldapclusterhops {hops}"]


def hop_lines(n, me="node-x.test"):
    """n X-Tern-Cluster lines, in the spellings a header may use"""
    forms = ["X-Tern-Cluster: {}", "x-tern-cluster: {}", "X-TERN-CLUSTER : {}"]
    return "".join(forms[i % 3].format(me) + "\n" for i in range(n)).encode()


def cluster_message(workdir, hops, name="msg"):
    return message(workdir, b"Received: from x by y\n" + hop_lines(hops) +
                   b"Subject: hi\n X-Tern-Cluster: folded, not a field\n\n"
                   b"X-Tern-Cluster: in the body, not a field\n", name)


def field_count(raw, name="X-Tern-Cluster"):
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode(errors="replace")
    return len(re.findall(rf"^{name}[ \t]*:", head, re.M | re.I))


def node(make_tern, addr, **config):
    cfg = {"smtpclustercookie": COOKIE, "retryremote": "1", "concurrencyremote": "4"}
    cfg.update(config)
    return make_tern(config=cfg, addr=addr)


# --------------------------------------------------------------------------- (a) greeting

def test_the_greeting_ends_with_the_cookie(make_tern):
    a = node(make_tern, "127.0.0.2", me="node-a.test")
    with a.smtp() as c:
        assert c.greeting[0] == 220
        assert c.greeting[1][-1] == f"220 node-a.test ESMTP tern {COOKIE}"
    plain = make_tern(config={"me": "plain.test"}, addr="127.0.0.4")
    with plain.smtp() as c:                              # no cookie: the greeting as before
        assert c.greeting[1][-1] == "220 plain.test ESMTP tern"


def test_a_bad_cookie_is_a_config_error(workdir):
    conf = workdir / "bad.conf"
    for bad in ("0123456789abcdef0123456789abcdef0", "caf\u00e9"):
        conf.write_text(f"me x.test\nspool {workdir / 'spool'}\nsmtpclustercookie {bad}\n")
        r = subprocess.run([str(TERND), "-n", "-f", str(conf)], capture_output=True,
                           text=True, timeout=20)
        assert r.returncode == 78, r
        assert "smtpclustercookie: at most 32 printable characters" in r.stdout + r.stderr


# --------------------------------------------------------------------------- (b) smtp to a node

def test_smtp_delivery_to_a_node_bounces_5_4_6(make_tern):
    """smtproutes on node A sends b.test to node B (an ordinary smtp delivery): B greets with
    the cluster's cookie, so the mail loops within the cluster (A's locals and the MX
    disagree): it bounces at once with 5.4.6, and B's queue gets nothing."""
    b = node(make_tern, "127.0.0.3", me="node-b.test", locals="b.test")
    a = node(make_tern, "127.0.0.2", me="node-a.test", relayclients="127.0.0.0/8",
             smtproutes=f"b.test:127.0.0.3:{b.port}")
    with smtplib.SMTP(a.addr, a.port, timeout=15) as s:
        s.sendmail("joe@localhost", ["ann@b.test"], b"Subject: loop\r\n\r\nbody\r\n")
    bounce = a.wait_delivered("joe", 1, timeout=30)[0].decode(errors="replace")
    assert "Final-Recipient: rfc822; ann@b.test" in bounce
    assert "Status: 5.4.6" in bounce and LOOP in bounce
    assert "event=cluster_loop" in a.log()
    # the bounce is the synchronisation point: A was done with the message
    assert "event=queued" not in b.log(), b.log_tail()
    assert b.maildir("ann") == []
    assert not list((b.spool / "env").iterdir())


# --------------------------------------------------------------------------- (c) the mta

def test_cluster_delivery_adds_one_line_and_counts_it_in_size(driver, workdir, smtpd):
    rec, port = smtpd(f"ESMTP {COOKIE}")
    msg = cluster_message(workdir, 2)
    run = run_mta(driver, workdir, f"cjob [127.0.0.1]:{port} s@a {msg} ann@b\n",
                  extra=cluster_extra())
    assert run.status() == {"ann@b": "ok"}, run
    data = rec.txns[0]["content"]
    assert data.startswith(b"X-Tern-Cluster: tern.test\r\nReceived: from x by y\r\n"), data
    assert field_count(data) == 3
    line = len("X-Tern-Cluster: tern.test\n")
    assert f"SIZE={msg.stat().st_size + line}" in rec.txns[0]["options"], rec.txns


@pytest.mark.parametrize("hops", [3, 4])
def test_cluster_delivery_at_the_hop_limit_fails_5_4_6(driver, workdir, smtpd, hops):
    rec, port = smtpd(f"ESMTP {COOKIE}")
    msg = cluster_message(workdir, hops)
    run = run_mta(driver, workdir, f"cjob [127.0.0.1]:{port} s@a {msg} ann@b bob@b\n",
                  extra=cluster_extra(hops=3))
    assert run.status() == {"ann@b": "perm", "bob@b": "perm"}, run
    assert all(LOOP in r["diag"] and "5.4.6" in r["diag"] for r in run.results), run
    assert rec.sessions == {}                            # refused before any connection
    assert "event=cluster_loop" in run.log


def test_hop_limit_is_a_key(driver, workdir, smtpd):
    rec, port = smtpd(f"ESMTP {COOKIE}")
    msg = cluster_message(workdir, 3)
    run = run_mta(driver, workdir, f"cjob [127.0.0.1]:{port} s@a {msg} ann@b\n",
                  extra=cluster_extra(hops=4))
    assert run.status() == {"ann@b": "ok"}, run
    assert field_count(rec.txns[0]["content"]) == 4


def test_smtp_delivery_to_a_node_fails_before_ehlo(driver, workdir, smtpd):
    rec, port = smtpd(f"ESMTP {COOKIE}")
    msg = message(workdir, b"Subject: x\n\nbody\n")
    run = run_mta(driver, workdir, f"job [127.0.0.1]:{port} s@a {msg} ann@b bob@b\n",
                  extra=cluster_extra())
    assert run.status() == {"ann@b": "perm", "bob@b": "perm"}, run
    assert all(r["diag"].startswith(LOOP + " (#5.4.6)") for r in run.results), run
    assert [c for cmds in rec.sessions.values() for c in cmds] in ([], ["QUIT"]), rec.sessions
    assert rec.txns == []


def test_cluster_delivery_to_a_stranger_defers_4_4_6(driver, workdir, smtpd):
    rec, port = smtpd("ESMTP other-cookie")
    msg = message(workdir, b"Subject: x\n\nbody\n")
    run = run_mta(driver, workdir, f"cjob [127.0.0.1]:{port} s@a {msg} ann@b\n",
                  extra=cluster_extra())
    assert run.status() == {"ann@b": "temp"}, run
    diag = run.results[0]["diag"]
    assert f"mailHost [127.0.0.1]:{port} is not a node of this cluster" in diag, diag
    assert "4.4.6" in diag
    assert rec.txns == []


def test_without_a_cookie_cluster_delivers_like_smtp(driver, workdir, smtpd):
    rec, port = smtpd(f"ESMTP {COOKIE}")
    msg = message(workdir, b"Subject: x\n\nbody\n")
    run = run_mta(driver, workdir, f"job [127.0.0.1]:{port} s@a {msg} a@b\nwait\n"
                                   f"cjob [127.0.0.1]:{port} s@a {msg} c@d\n",
                  extra=cluster_extra(cookie=None))
    assert run.status() == {"a@b": "ok", "c@d": "ok"}, run
    assert [field_count(t["content"]) for t in rec.txns] == [0, 1]


def test_cluster_and_smtp_never_share_a_connection(driver, workdir, smtpd):
    """Connections are reused per (channel, host), as the scheduler's threads: a connection
    whose greeting was judged for one channel never carries the other's mail."""
    rec, port = smtpd("ESMTP")
    msg = message(workdir, b"Subject: x\n\nbody\n")
    run = run_mta(driver, workdir, f"job [127.0.0.1]:{port} s@a {msg} a@b\nwait\n"
                                   f"cjob [127.0.0.1]:{port} s@a {msg} c@d\nwait\n"
                                   f"job [127.0.0.1]:{port} s@a {msg} e@f\nwait\nterm\n",
                  extra=cluster_extra(cookie=None))
    assert run.status() == {"a@b": "ok", "c@d": "ok", "e@f": "ok"}, run
    assert len(rec.sessions) == 2, rec.sessions
    assert sorted(cmds.count("MAIL") for cmds in rec.sessions.values()) == [1, 2]


def test_cluster_delivery_to_a_real_node(driver, workdir, make_tern):
    """The mta alone (as node A) hands a cluster job to a real node B, which greets with the
    same cookie and delivers: B's copy carries A's X-Tern-Cluster line and the old ones."""
    b = node(make_tern, "127.0.0.3", me="node-b.test", locals="b.test")
    msg = cluster_message(workdir, 1)
    run = run_mta(driver, workdir, f"cjob [127.0.0.3]:{b.port} s@a {msg} ann@b.test\n",
                  extra=cluster_extra())
    assert run.status() == {"ann@b.test": "ok"}, run
    got = b.wait_delivered("ann", 1)[0]
    assert field_count(got) == 2
    assert b"X-Tern-Cluster: tern.test\n" in got


# --------------------------------------------------------------------------- the full path

def user_ldif(uid, node_):
    home = node_.mail / uid
    return qmail_user(uid, base=SUFFIX, qmailUID=65534, qmailGID=65534, homeDirectory=home,
                      mailMessageStore=f"{home}/Maildir/", mailHost=mailhost(node_))



def mailhost(node_):
    """the mailHost value naming a node: its address and port (an smtproutes relay)"""
    return f"{node_.addr}:{node_.port}"


def move(ldap, uid, node_):
    home = node_.mail / uid
    ldap.modify(f"dn: uid={uid},{SUFFIX}\nchangetype: modify\nreplace: mailHost\n"
                f"mailHost: {mailhost(node_)}\n-\nreplace: homeDirectory\n"
                f"homeDirectory: {home}\n-\nreplace: mailMessageStore\n"
                f"mailMessageStore: {home}/Maildir/\n")


def make_home(node_, uid):
    home = node_.mail / uid
    home.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(home, 65534, 65534)


@pytest.fixture
def directory(make_ldap_pair):
    """(provider, replica): slapd on 127.0.0.1 and a syncrepl consumer on 127.0.0.4"""
    prov, repl = make_ldap_pair()
    repl.wait_synced()
    return prov, repl


def cluster_node(make_tern, addr, me, ldap, **extra):
    """A node (not started): users from ldap, ldapcluster on, its own address:port is one of
    its cluster names. Start it after the directory knows the ports."""
    cfg = {"me": me, "smtpclustercookie": COOKIE, "retryremote": "1", "timeoutconnect": "2",
           "concurrencyremote": "4", "locals": "example.test", "users": "ldap:",
           "ldapserver": ldap.url, "ldapbasedn": SUFFIX, "ldaplogin": ldap.rootdn,
           "ldappassword": ldap.rootpw, "ldapcluster": "yes", "relayclients": "127.0.0.0/8"}
    cfg["ldapcachettl"] = "0"                            # a move is seen at once
    cfg.update(extra)
    t = make_tern(config=cfg, addr=addr, start=False)
    t.config["ldapclusterhosts"] = mailhost(t)
    for uid in ("ann", "bob"):
        make_home(t, uid)
    return t


def send(node_, rcpt, subject):
    """from <>: a failure makes no bounce that would need DNS"""
    body = f"Subject: {subject}\r\nMessage-ID: <{subject}@test>\r\n\r\n{subject}\r\n".encode()
    with smtplib.SMTP(node_.addr, node_.port, timeout=15) as s:
        s.sendmail("", [rcpt], body)


def subjects(node_, uid):
    return [email.message_from_bytes(m, policy=email.policy.compat32)["Subject"]
            for m in node_.maildir(uid)]


def queue_empty(node_):
    return not list((node_.spool / "env").iterdir())


def test_full_path_forward_move_and_node_down(make_tern, directory):
    prov, repl = directory
    a = cluster_node(make_tern, "127.0.0.2", "node-a.test", prov)   # A: the provider
    b = cluster_node(make_tern, "127.0.0.3", "node-b.test", repl)   # B: its replica
    prov.add(user_ldif("ann", b))
    repl.wait_entry("(mail=ann@example.test)")
    a.start()
    b.start()

    # a user homed on B, mail arriving at A: forwarded by channel "cluster", lands on B once
    send(a, "ann@example.test", "first")
    b.wait_delivered("ann", 1, timeout=30)
    assert wait_for(lambda: queue_empty(a) and queue_empty(b), 20)
    assert subjects(b, "ann") == ["first"] and subjects(a, "ann") == []
    assert field_count(b.maildir("ann")[0]) == 1
    assert "X-Tern-Cluster: node-a.test" in b.maildir("ann")[0].decode()

    # moving the user moves new mail: B (reading its replica) now forwards to A
    move(prov, "ann", a)
    repl.wait_entry("(mail=ann@example.test)",
                    lambda es: es and es[0]["mailHost"] == [mailhost(a)])
    send(b, "ann@example.test", "second")
    send(a, "ann@example.test", "third")
    a.wait_delivered("ann", 2, timeout=30)
    assert sorted(subjects(a, "ann")) == ["second", "third"]
    assert subjects(b, "ann") == ["first"]

    # node B down: A defers, and drains when B is back
    move(prov, "ann", b)
    repl.wait_entry("(mail=ann@example.test)",
                    lambda es: es and es[0]["mailHost"] == [mailhost(b)])
    b.stop()
    send(a, "ann@example.test", "fourth")
    assert wait_for(lambda: "status=deferred" in a.log() or "event=deferred" in a.log(), 30), \
        a.log_tail()
    assert not queue_empty(a)
    b.start()
    b.wait_delivered("ann", 2, timeout=60)
    assert subjects(b, "ann") == ["first", "fourth"]
    assert wait_for(lambda: queue_empty(a), 20)


def test_each_node_reads_its_nearest_replica(make_tern, directory):
    """B reads only the replica: with the provider gone, mail for a user homed on B still
    arrives at B and is delivered there."""
    prov, repl = directory
    b = cluster_node(make_tern, "127.0.0.3", "node-b.test", repl)
    prov.add(user_ldif("bob", b))
    repl.wait_entry("(mail=bob@example.test)")
    prov.stop()
    b.start()
    send(b, "bob@example.test", "replica")
    b.wait_delivered("bob", 1, timeout=30)
    assert subjects(b, "bob") == ["replica"]


def test_directories_that_disagree_never_ping_pong(make_tern, workdir):
    """A reads a directory that says bob is on B, B one that says he is on A: the message
    goes back and forth ldapclusterhops times at most, then fails 5.4.6; nobody gets it."""
    why = ldap_usable()
    if why:
        pytest.skip(why)
    da, db = LdapInstance(workdir / "da"), LdapInstance(workdir / "db")
    try:
        da.start()
        db.start()
        a = cluster_node(make_tern, "127.0.0.2", "node-a.test", da, ldapclusterhops="3")
        b = cluster_node(make_tern, "127.0.0.3", "node-b.test", db, ldapclusterhops="3")
        da.add(user_ldif("bob", b))
        db.add(user_ldif("bob", a))
        a.start()
        b.start()
        send(a, "bob@example.test", "pingpong")
        assert wait_for(lambda: LOOP in a.log() + b.log(), 60), a.log_tail() + b.log_tail()
        # the failure is final (the double bounce to a postmaster the directories lack may
        # wait in a queue: that is not the message)
        assert wait_for(lambda: re.search(r"rcpt=<bob@example.test> channel=cluster .*"
                                          r"status=bounced", a.log() + b.log()), 30)
        assert a.maildir("bob") == [] and b.maildir("bob") == []
        forwards = [ln for ln in (a.log() + b.log()).splitlines()
                    if "event=delivered" in ln and "rcpt=<bob@example.test>" in ln]
        assert 1 <= len(forwards) <= 3, forwards         # the hop budget, never more
    finally:
        da.stop()
        db.stop()
