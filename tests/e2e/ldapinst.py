"""tests/e2e/ldapinst.py — a private OpenLDAP server (slapd) for the directory tests of
issue 9: its configuration, its mdb database, its pid file and its log all live under the
test's own directory; it listens on ldap://127.0.0.1:RANDOMPORT/ only (plus, with a
certificate, ldaps://127.0.0.1:RANDOMPORT2/ and StartTLS on the first port), never on
another address and never on ldapi://. It never touches /etc/ldap/slapd.d or a system slapd
(scripts/deps installs the package with slapd/no_configuration).

    ldap = LdapInstance(workdir / "ldap")                 # suffix dc=example,dc=test
    ldap.add(LDIF)                                        # before start: slapadd; after: ldapadd
    ldap.start()                                          # returns when slapd answers a search
    ldap.url, ldap.port, ldap.rootdn, ldap.rootpw         # for tern's ldapserver/ldaplogin keys
    ldap.search("(mail=joe@example.test)")                # [Entry]; e.dn, e["mail"] -> [str]
    ldap.bind(dn, password)                               # True / False (invalid credentials)
    ldap.modify(LDIF); ldap.delete(dn)                    # while running (ldapmodify/ldapdelete)
    ldap.freeze(); ldap.thaw()                            # SIGSTOP/SIGCONT: a server that times out
    ldap.stop(); ldap.start()                             # restart on the same port(s)
    ldap.stop(kill=True)                                  # SIGKILL: a crashed server

    ca = TestCA(workdir / "ca")                           # tests/e2e/tlsca.py
    ldap = LdapInstance(d, cert=ca.leaf("ldap.example.test", ips=["127.0.0.1"]))
    ldap.ldaps_url                                        # ldaps://127.0.0.1:PORT2/
    ldap.search(f, tls="starttls", cafile=ca.cert)        # or tls="ldaps"; CA verified (demand)

    prov = LdapInstance(d, syncprov=True).start()         # a syncrepl provider (syncprov overlay)
    repl = prov.replica(workdir / "replica", host="127.0.0.4").start()   # a consumer
    repl.wait_synced(prov)                                # its contextCSN caught up
    repl.wait_entry("(mail=joe@example.test)", lambda es: es and es[0]["mailHost"] == ["b"])

Replication (doc/CLUSTER.md has the operator's version): the provider loads the syncprov
overlay; replica() makes a consumer on its own address/port with its own cn=config directory
(slapd.d, built by slapadd -n0 like config="ldif") whose database carries
olcSyncrepl (refreshAndPersist, retry every second, bound as the provider's rootdn, so it
receives every attribute). The consumer starts with an empty database: refresh brings the
suffix and every entry, persist brings each later add, modify and delete. Both are ordinary
LdapInstances (stop/start/freeze); writes go to the provider.

Schema: core, cosine, inetorgperson, nis from /etc/ldap/schema and qmail-ldap's qmail.schema
from the shared reference directory (../shared/ref from the repository root), included by
slapd.conf (config="conf", the default). config="ldif" builds a cn=config directory
(slapd.d) with slapadd -n0 from the schemas' LDIF forms instead, with ../shared/ref/qmail.ldif
(the same qmail schema converted to cn=config; it holds no entries), so both forms are proved
to load. The suffix entry (dcObject/organization) is loaded before the first start.

slapd runs in the foreground (`slapd -d none`: no fork, only uncategorised messages such
as "bind failed" on stderr), as whoever runs the test (root or not; no -u),
and is stopped by its pid. Readiness is a condition (an anonymous base search answers), never
a sleep. Its stderr goes to DIR/slapd.log (log() returns it; debug="stats" logs every
operation there).

Clients are the ldap-utils commands (ldapsearch -LLL, parsed here; ldapadd, ldapmodify,
ldapdelete, ldapwhoami) with a network timeout; TLS settings travel in LDAPTLS_* variables
(LDAPTLS_REQCERT=demand), which override /etc/ldap/ldap.conf.

Owns: the files under its directory and the slapd process it starts. Trusts: the slapd,
slapadd and ldap-utils binaries of the Debian packages and the schema files they ship."""
import base64
import hashlib
import os
import pathlib
import signal
import socket
import subprocess
import time

from conftest import free_port

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED_REF = REPO.parent / "shared" / "ref"
QMAIL_SCHEMA = SHARED_REF / "qmail.schema"
QMAIL_LDIF = SHARED_REF / "qmail.ldif"
SYSTEM_SCHEMA = pathlib.Path("/etc/ldap/schema")
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
MODULEPATH = "/usr/lib/ldap"
SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
TIMEOUT = 10                      # seconds for any one client command


def ldap_usable():
    """None if a private slapd can run here, else why not (for pytest.skip)."""
    for path in (SLAPD, SLAPADD, "/usr/bin/ldapsearch", f"{MODULEPATH}/back_mdb.so"):
        if not os.path.exists(path):
            return f"{path} is missing (scripts/deps test installs slapd and ldap-utils)"
    for name in SCHEMAS:
        if not (SYSTEM_SCHEMA / f"{name}.schema").exists():
            return f"{SYSTEM_SCHEMA}/{name}.schema is missing"
    if not QMAIL_SCHEMA.exists():
        return f"{QMAIL_SCHEMA} is missing (the shared reference directory)"
    return None


def ssha(password, salt=b"saltsalt"):
    """userPassword in {SSHA} form (a fixed salt: the same LDIF every run)"""
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def qmail_user(uid, base="ou=people,dc=example,dc=test", **attrs):
    """The LDIF of a qmailUser entry uid=UID,BASE (inetOrgPerson, cn and sn UID, mail
    UID@example.test) with attrs: a name gets a value or a list of values, None leaves the
    attribute out. Ends with a blank line, so entries concatenate."""
    vals = {"uid": uid, "cn": uid, "sn": uid, "mail": f"{uid}@example.test", **attrs}
    out = [f"dn: uid={uid},{base}", "objectClass: inetOrgPerson", "objectClass: qmailUser"]
    for name, v in vals.items():
        for one in (v if isinstance(v, (list, tuple)) else [v] if v is not None else []):
            out.append(f"{name}: {one}")
    return "\n".join(out) + "\n\n"


class LdapError(AssertionError):
    pass


class Entry:
    """One search result: dn and attributes (names case-insensitive, values lists of str;
    binary values that are not UTF-8 stay bytes)."""

    def __init__(self, dn):
        self.dn = dn
        self.attrs = {}

    def _add(self, name, value):
        self.attrs.setdefault(name.lower(), []).append(value)

    def __getitem__(self, name):
        return self.attrs[name.lower()]

    def __contains__(self, name):
        return name.lower() in self.attrs

    def get(self, name, default=None):
        return self.attrs.get(name.lower(), default)

    def __repr__(self):
        return f"Entry({self.dn!r}, {self.attrs!r})"


def _unfold(text):
    """LDIF lines with continuation lines (leading space) joined, comments dropped."""
    lines = []
    for line in text.splitlines():
        if line.startswith(" ") and lines:
            lines[-1] += line[1:]
        elif line.startswith("#"):
            continue
        else:
            lines.append(line)
    return lines


def _value(rest):
    """The value after `attr:` — `: base64`, `< url` (not expected) or ` text`."""
    if rest.startswith(":"):
        raw = base64.b64decode(rest[1:].strip())
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return raw
    return rest.lstrip(" ")


def parse_ldif(text):
    """ldapsearch -LLL output -> [Entry]."""
    entries, cur = [], None
    for line in _unfold(text) + [""]:
        if not line:
            if cur:
                entries.append(cur)
            cur = None
            continue
        name, sep, rest = line.partition(":")
        if not sep:
            raise LdapError(f"unparsable LDIF line {line!r}")
        value = _value(rest)
        if cur is None:
            if name.lower() != "dn":
                raise LdapError(f"LDIF record without dn: {line!r}")
            cur = Entry(value)
        else:
            cur._add(name, value)
    return entries


class LdapInstance:
    def __init__(self, directory, suffix="dc=example,dc=test", rootpw="rootsecret",
                 cert=None, config="conf", debug="none", host="127.0.0.1", syncprov=False,
                 provider=None):
        if config not in ("conf", "ldif"):
            raise ValueError("config is 'conf' (slapd.conf) or 'ldif' (cn=config)")
        self.host = host                  # the loopback address it listens on
        self.syncprov = syncprov          # a syncrepl provider: the syncprov overlay
        self.provider = provider          # a consumer: the LdapInstance it replicates
        if provider is not None:
            config = "ldif"               # olcSyncrepl lives in its own cn=config
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.suffix = suffix
        self.rootdn = f"cn=admin,{suffix}"
        self.rootpw = rootpw
        self.cert = cert                  # a tlsca.Leaf, or None for no TLS at all
        self.config = config
        self.debug = debug
        self.port = None
        self.ldaps_port = None
        self.proc = None
        self.frozen = False
        self.db = self.dir / "db"
        self.conf = self.dir / "slapd.conf"
        self.confdir = self.dir / "slapd.d"
        self.logfile = self.dir / "slapd.log"
        self._pending = []                # LDIF given to add() before the first start
        self._loaded = False              # the database exists (slapadd ran)

    # ------------------------------------------------------------------ addresses
    @property
    def url(self):
        return f"ldap://{self.host}:{self.port}/"

    @property
    def ldaps_url(self):
        return f"ldaps://{self.host}:{self.ldaps_port}/" if self.ldaps_port else None

    def _listen(self):
        return " ".join(u for u in (self.url, self.ldaps_url) if u)

    # ------------------------------------------------------------------ configuration
    def _tls_lines(self):
        if not self.cert:
            return []
        return [f"TLSCertificateFile {self.cert.chain}",
                f"TLSCertificateKeyFile {self.cert.key}"]

    def _acl_lines(self):
        # users bind with their userPassword; nobody but the entry and the rootdn reads it
        return ["access to attrs=userPassword by self write by anonymous auth by * none",
                "access to * by * read"]

    def _write_conf(self):
        lines = [f"include {SYSTEM_SCHEMA / n}.schema" for n in SCHEMAS]
        lines += [f"include {QMAIL_SCHEMA}",
                  f"pidfile {self.dir / 'slapd.pid'}",
                  f"argsfile {self.dir / 'slapd.args'}",
                  f"modulepath {MODULEPATH}",
                  "moduleload back_mdb",
                  *(["moduleload syncprov"] if self.syncprov else []),
                  *self._tls_lines(),
                  "database mdb",
                  f"suffix \"{self.suffix}\"",
                  f"rootdn \"{self.rootdn}\"",
                  f"rootpw {self.rootpw}",
                  f"directory {self.db}",
                  "maxsize 67108864",
                  "index objectClass eq",
                  "index mail,mailAlternateAddress,uid eq",
                  *(["index entryCSN,entryUUID eq", "overlay syncprov"] if self.syncprov
                    else []),
                  *self._acl_lines()]
        self.conf.write_text("\n".join(lines) + "\n")
        self.conf.chmod(0o600)

    def _config_ldif(self):
        """cn=config for slapadd -n0: the same server as _write_conf, schemas from LDIF."""
        schema = "".join(f"include: file://{SYSTEM_SCHEMA / n}.ldif\n\n" for n in SCHEMAS)
        schema += f"include: file://{QMAIL_LDIF}\n\n"
        tls = "".join(f"olc{line.split()[0]}: {line.split()[1]}\n" for line in self._tls_lines())
        acl = "".join(f"olcAccess: {{{i}}}{a[len('access '):]}\n"
                      for i, a in enumerate(self._acl_lines()))
        syncprov = "olcModuleLoad: syncprov\n" if self.syncprov else ""
        return (
            "dn: cn=config\nobjectClass: olcGlobal\ncn: config\n"
            f"olcPidFile: {self.dir / 'slapd.pid'}\nolcArgsFile: {self.dir / 'slapd.args'}\n"
            f"{tls}\n"
            "dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n"
            f"olcModulePath: {MODULEPATH}\nolcModuleLoad: back_mdb\n{syncprov}\n"
            "dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n"
            f"{schema}"
            "dn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\n"
            "objectClass: olcFrontendConfig\nolcDatabase: {-1}frontend\n\n"
            "dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\n"
            "olcDatabase: {0}config\nolcAccess: {0}to * by * none\n\n"
            "dn: olcDatabase={1}mdb,cn=config\nobjectClass: olcDatabaseConfig\n"
            "objectClass: olcMdbConfig\nolcDatabase: {1}mdb\n"
            f"olcSuffix: {self.suffix}\nolcRootDN: {self.rootdn}\nolcRootPW: {self.rootpw}\n"
            f"olcDbDirectory: {self.db}\nolcDbMaxSize: 67108864\n"
            "olcDbIndex: objectClass eq\nolcDbIndex: mail,mailAlternateAddress,uid eq\n"
            "olcDbIndex: entryCSN,entryUUID eq\n"
            f"{self._syncrepl_ldif()}{acl}\n"
            f"{self._syncprov_ldif()}")

    def _syncrepl_ldif(self):
        """A consumer's olcSyncrepl: refreshAndPersist from the provider, as its rootdn."""
        p = self.provider
        if p is None:
            return ""
        return (f"olcSyncrepl: {{0}}rid=001 provider={p.url} type=refreshAndPersist "
                f"retry=\"1 +\" searchbase=\"{p.suffix}\" scope=sub bindmethod=simple "
                f"binddn=\"{p.rootdn}\" credentials={p.rootpw} network-timeout=5 "
                f"timeout=1\n")

    def _syncprov_ldif(self):
        if not self.syncprov:
            return ""
        return ("dn: olcOverlay=syncprov,olcDatabase={1}mdb,cn=config\n"
                "objectClass: olcOverlayConfig\nobjectClass: olcSyncProvConfig\n"
                "olcOverlay: syncprov\n\n")

    def _cfg_args(self):
        return ["-F", str(self.confdir)] if self.config == "ldif" else ["-f", str(self.conf)]

    def _run(self, argv, stdin=None, env=None, check=True):
        r = subprocess.run(argv, input=stdin, capture_output=True, text=True, cwd=self.dir,
                           env=env, timeout=TIMEOUT * 3)
        if check and r.returncode != 0:
            raise LdapError(f"{' '.join(argv[:2])} exit {r.returncode}: {r.stderr.strip()}"
                            f"{r.stdout.strip()}")
        return r

    def _create(self):
        """Write the configuration and load the suffix entry plus pending LDIF (slapadd)."""
        why = ldap_usable()
        if why:
            raise LdapError(why)
        self.db.mkdir(exist_ok=True)
        if self.config == "ldif":
            self.confdir.mkdir(exist_ok=True)
            self._run([SLAPADD, "-n0", "-F", str(self.confdir)], stdin=self._config_ldif())
        else:
            self._write_conf()
        if self.provider is not None:         # a consumer: everything comes by syncrepl
            self._pending = []
            self._loaded = True
            return
        dc = self.suffix.split(",")[0].split("=", 1)[1]
        base = (f"dn: {self.suffix}\nobjectClass: dcObject\nobjectClass: organization\n"
                f"dc: {dc}\no: {dc}\n\n")
        self._run([SLAPADD, *self._cfg_args(), "-b", self.suffix, "-q"],
                  stdin=base + "\n".join(self._pending))
        self._pending = []
        self._loaded = True

    # ------------------------------------------------------------------ process
    def start(self, timeout=10.0):
        if self.proc and self.proc.poll() is None:
            raise LdapError("slapd is already running")
        if not self._loaded:
            self._create()
        fixed = self.port is not None     # a restart keeps its port(s)
        for _ in range(3):
            if not fixed:
                self.port = free_port(self.host)
                self.ldaps_port = free_port(self.host) if self.cert else None
            if self._spawn(timeout):
                return self
            if fixed:
                break
        raise LdapError("slapd did not start: " + self.log()[-3000:])

    def _spawn(self, timeout):
        """Start slapd; True once it answers, False if it exited (port taken?)."""
        with open(self.logfile, "ab") as log:
            log.write(f"---- start {time.strftime('%H:%M:%S')} {self._listen()}\n".encode())
            self.proc = subprocess.Popen(
                [SLAPD, "-d", self.debug, "-h", self._listen(), *self._cfg_args()],
                cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.frozen = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self._answers():
                return True
            time.sleep(0.02)
        self.stop(kill=True)
        raise LdapError(f"slapd did not answer in {timeout}s: " + self.log()[-3000:])

    def _answers(self):
        try:
            socket.create_connection((self.host, self.port), timeout=1).close()
        except OSError:
            return False
        try:
            r = subprocess.run(["ldapsearch", "-x", "-LLL", "-H", self.url, "-o",
                                "nettimeout=2", "-b", "", "-s", "base", "(objectClass=*)",
                                "1.1"], capture_output=True, cwd=self.dir, env=self._env(),
                               timeout=3)
        except subprocess.TimeoutExpired:          # something else holds the port
            return False
        return r.returncode == 0 and self.proc.poll() is None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, kill=False, timeout=10.0):
        """SIGTERM (or SIGKILL) to slapd's pid, wait for it to exit."""
        if not self.running():
            return
        if self.frozen:
            self.thaw()
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def freeze(self, timeout=10.0):
        """SIGSTOP: connections are accepted by the kernel but nothing answers. Returns once
        every thread of slapd is stopped (kill() only queues the signal: a thread running on
        another core could still answer a request sent right after it)."""
        self.proc.send_signal(signal.SIGSTOP)
        self.frozen = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._thread_state(t) in ("T", "t", None) for t in self._threads()):
                return
            time.sleep(0.005)
        raise LdapError("slapd did not stop")

    def _threads(self):
        try:
            return os.listdir(f"/proc/{self.proc.pid}/task")
        except OSError:
            return []

    def _thread_state(self, tid):
        try:
            with open(f"/proc/{self.proc.pid}/task/{tid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None                   # a thread that is gone

    def thaw(self):
        self.proc.send_signal(signal.SIGCONT)
        self.frozen = False

    def log(self):
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    # ------------------------------------------------------------------ clients
    def _env(self, cafile=None):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("LDAP"):
                del env[k]
        env["LDAPRC"] = str(self.dir / "ldaprc.none")    # no ./ldaprc, no user defaults
        if cafile:
            env["LDAPTLS_CACERT"] = str(cafile)
            env["LDAPTLS_REQCERT"] = "demand"
        return env

    def _conn(self, tls, bind):
        """ldap-utils arguments for a connection: URL, TLS, simple bind (rootdn default)."""
        if tls == "ldaps":
            if not self.ldaps_port:
                raise LdapError("no ldaps listener (LdapInstance(cert=...))")
            args = ["-H", self.ldaps_url]
        elif tls in (None, "starttls"):
            args = ["-H", self.url] + (["-ZZ"] if tls == "starttls" else [])
        else:
            raise ValueError(f"tls={tls!r}")
        args += ["-x", "-o", f"nettimeout={TIMEOUT}"]
        dn, pw = bind if bind is not None else (self.rootdn, self.rootpw)
        if dn:
            args += ["-D", dn, "-w", pw]
        return args

    def _client(self, tool, args, stdin=None, tls=None, bind=None, cafile=None, check=True):
        argv = [tool, *self._conn(tls, bind), *args]
        r = subprocess.run(argv, input=stdin, capture_output=True, text=True, cwd=self.dir,
                           env=self._env(cafile), timeout=TIMEOUT + 5)
        if check and r.returncode != 0:
            raise LdapError(f"{tool} exit {r.returncode}: {r.stderr.strip()}")
        return r

    def add(self, ldif):
        """Add entries: slapadd into the database before the first start, ldapadd (as the
        rootdn) afterwards."""
        if not self.running():
            if self._loaded:
                self._run([SLAPADD, *self._cfg_args(), "-b", self.suffix, "-q"], stdin=ldif)
            else:
                self._pending.append(ldif.rstrip("\n") + "\n")
            return
        self._client("ldapadd", [], stdin=ldif)

    def modify(self, ldif):
        self._client("ldapmodify", [], stdin=ldif)

    def delete(self, dn):
        self._client("ldapdelete", [dn])

    def search(self, filt, base=None, scope="sub", attrs=(), tls=None, bind=None, cafile=None):
        """Entries matching filt under base (the suffix); bind=(dn, pw), ("", "") for
        anonymous, None for the rootdn. Raises LdapError on any failure but no such object."""
        args = ["-LLL", "-o", "ldif-wrap=no", "-b", base or self.suffix, "-s", scope, filt,
                *attrs]
        r = self._client("ldapsearch", args, tls=tls, bind=bind, cafile=cafile, check=False)
        if r.returncode == 32:            # noSuchObject: the base does not exist
            return []
        if r.returncode != 0:
            raise LdapError(f"ldapsearch {filt} exit {r.returncode}: {r.stderr.strip()}")
        return parse_ldif(r.stdout)

    def bind(self, dn, password, tls=None, cafile=None):
        """True if a simple bind as dn with password succeeds, False on invalidCredentials
        (49); anything else (server down, TLS failure) raises LdapError."""
        r = self._client("ldapwhoami", [], tls=tls, bind=(dn, password), cafile=cafile,
                         check=False)
        if r.returncode == 0:
            return True
        if r.returncode == 49:
            return False
        raise LdapError(f"ldapwhoami exit {r.returncode}: {r.stderr.strip()}")

    # ------------------------------------------------------------------ replication
    def replica(self, directory, host="127.0.0.1", **kw):
        """A syncrepl consumer of this server (which must have syncprov=True), not started."""
        if not self.syncprov:
            raise LdapError("replica() needs a provider made with syncprov=True")
        return LdapInstance(directory, suffix=self.suffix, rootpw=self.rootpw, host=host,
                            provider=self, **kw)

    def context_csn(self):
        """The suffix entry's contextCSN values (sorted), [] before the first sync."""
        es = self.search("(objectClass=*)", base=self.suffix, scope="base",
                         attrs=("contextCSN",))
        return sorted(es[0].get("contextCSN", [])) if es else []

    def wait_synced(self, provider=None, timeout=15.0):
        """Until this consumer's contextCSN equals its provider's (every change the provider
        had when this was called, and maybe later ones, has arrived). Raises on timeout."""
        provider = provider or self.provider
        deadline = time.monotonic() + timeout
        want = provider.context_csn()
        while True:
            have = self.context_csn()
            if want and have and have >= want:
                return have
            if time.monotonic() >= deadline:
                raise LdapError(f"replica not synced after {timeout}s: have {have}, want "
                                f"{want}\n" + self.log()[-2000:])
            time.sleep(0.05)

    def wait_entry(self, filt, pred=bool, timeout=15.0):
        """Until pred(search(filt)) is true on this server (e.g. a change has arrived at a
        replica); returns the entries. pred defaults to "something matches"."""
        deadline = time.monotonic() + timeout
        while True:
            es = self.search(filt)
            if pred(es):
                return es
            if time.monotonic() >= deadline:
                raise LdapError(f"{filt}: condition not met after {timeout}s, have {es!r}")
            time.sleep(0.05)
