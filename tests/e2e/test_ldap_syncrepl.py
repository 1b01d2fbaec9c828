"""tests/e2e/test_ldap_syncrepl.py — the replication the cluster relies on (doc/CLUSTER.md):
a second slapd (tests/e2e/ldapinst.py's replica(), its own cn=config with olcSyncrepl,
refreshAndPersist) on another loopback address follows the first. An entry loaded before the
replica existed arrives by refresh; an add, a mailHost change and a delete made on the provider
afterwards arrive by persist; the replica refuses writes of its own.

Owns: nothing outside its temporary directories. Trusts: ldapinst.py and the Debian slapd."""
import pytest

from ldapinst import LdapError, qmail_user

SUFFIX = "dc=example,dc=test"


def user(uid, host):
    return qmail_user(uid, base=SUFFIX, mailHost=host, mailMessageStore=f"/var/mail/{uid}")


@pytest.fixture
def pair(make_ldap_pair):
    return make_ldap_pair(user("ann", "node-a.test"))


def hosts(entries):
    return [e["mailHost"] for e in entries]


def test_refresh_then_add_modify_delete_reach_the_replica(pair):
    prov, repl = pair
    assert repl.url.startswith("ldap://127.0.0.4:")
    repl.wait_synced()                                   # refresh: the entry from before
    assert hosts(repl.search("(mail=ann@example.test)")) == [["node-a.test"]]

    prov.add(user("bob", "node-a.test"))                 # persist: add
    es = repl.wait_entry("(mail=bob@example.test)")
    assert hosts(es) == [["node-a.test"]]

    prov.modify(f"dn: uid=bob,{SUFFIX}\nchangetype: modify\nreplace: mailHost\n"
                "mailHost: node-b.test\n")               # persist: modify (a move)
    es = repl.wait_entry("(mail=bob@example.test)",
                         lambda es: hosts(es) == [["node-b.test"]])
    assert hosts(es) == [["node-b.test"]]

    prov.delete(f"uid=bob,{SUFFIX}")                     # persist: delete
    repl.wait_entry("(mail=bob@example.test)", lambda es: es == [])
    repl.wait_synced()
    assert repl.context_csn() == prov.context_csn()
    assert hosts(repl.search("(mail=ann@example.test)")) == [["node-a.test"]]


def test_the_replica_refuses_writes(pair):
    prov, repl = pair
    repl.wait_synced()
    with pytest.raises(LdapError):
        repl.add(user("eve", "node-a.test"))
    assert prov.search("(mail=eve@example.test)") == []


def test_a_replica_that_was_down_catches_up(pair):
    prov, repl = pair
    repl.wait_synced()
    repl.stop()
    prov.modify(f"dn: uid=ann,{SUFFIX}\nchangetype: modify\nreplace: mailHost\n"
                "mailHost: node-c.test\n")
    repl.start()
    repl.wait_entry("(mail=ann@example.test)", lambda es: hosts(es) == [["node-c.test"]])
