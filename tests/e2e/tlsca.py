"""tests/e2e/tlsca.py — a throw-away certificate authority for the TLS tests, made with the
`openssl` command in the test's own directory (no key is ever committed).

Owns: the files it writes under its directory. Trusts: the openssl command.

    ca = TestCA(workdir / "ca")                   # ca.cert: the CA certificate (PEM)
    leaf = ca.leaf("mx.example.test")             # leaf.pem: key + cert + CA chain (servercert)
    leaf.key, leaf.cert, leaf.chain               # separate files, for Postfix and friends
    ca.leaf("x", days=-1)                         # already expired
    ca.leaf("wrong.example.test", ips=["127.0.0.1"])
    TestCA(workdir / "other")                     # a second CA nobody trusts
"""
import datetime
import pathlib
import subprocess


def _openssl(*args, cwd=None):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)


def _ext(base, suffix):
    return base.parent / (base.name + suffix)


class Leaf:
    def __init__(self, base):
        self.key = _ext(base, ".key")
        self.cert = _ext(base, ".crt")
        self.chain = _ext(base, ".chain.crt")         # leaf cert + CA cert
        self.pem = _ext(base, ".pem")                 # key + leaf cert + CA cert


class TestCA:
    __test__ = False                                  # not a pytest class

    def __init__(self, directory, name="tern test CA"):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = self.dir / "ca.key"
        self.cert = self.dir / "ca.crt"
        self._serial = 1
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", str(self.key), "-out", str(self.cert), "-days", "2",
                 "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def leaf(self, cn, names=None, ips=None, days=2, rsa=False, filename=None):
        """A leaf certificate for cn (and SAN names/ips), signed by this CA. days < 0 makes
        one that expired -days days ago."""
        self._serial += 1
        base = self.dir / (filename or cn.replace("*", "star"))
        leaf = Leaf(base)
        keyalg = ["rsa:2048"] if rsa else ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        csr = _ext(base, ".csr")
        _openssl("req", "-new", "-newkey", *keyalg, "-nodes", "-keyout", str(leaf.key),
                 "-out", str(csr), "-subj", f"/CN={cn}")
        san = [f"DNS:{n}" for n in ([cn] + list(names or []))] + \
              [f"IP:{i}" for i in (ips or [])]
        ext = _ext(base, ".ext")
        ext.write_text("basicConstraints=CA:FALSE\n"
                       "keyUsage=critical,digitalSignature,keyEncipherment\n"
                       "extendedKeyUsage=serverAuth,clientAuth\n"
                       f"subjectAltName={','.join(san)}\n")
        if days >= 0:
            _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey",
                     str(self.key), "-set_serial", str(self._serial), "-days", str(days),
                     "-extfile", str(ext), "-out", str(leaf.cert))
        else:                                         # validity entirely in the past
            start = datetime.datetime.utcnow() - datetime.timedelta(days=-days + 2)
            end = datetime.datetime.utcnow() - datetime.timedelta(days=-days)
            fmt = "%Y%m%d%H%M%SZ"
            _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey",
                     str(self.key), "-set_serial", str(self._serial), "-not_before",
                     start.strftime(fmt), "-not_after", end.strftime(fmt),
                     "-extfile", str(ext), "-out", str(leaf.cert)) \
                if _has_not_before() else _expired_fallback(self, csr, ext, leaf, days)
        leaf.chain.write_text(leaf.cert.read_text() + self.cert.read_text())
        leaf.pem.write_text(leaf.key.read_text() + leaf.chain.read_text())
        for p in (leaf.key, leaf.pem):
            p.chmod(0o600)
        return leaf


def _has_not_before():
    """openssl x509 -not_before exists from OpenSSL 3.4 on; older ones need `openssl ca`."""
    r = subprocess.run(["openssl", "x509", "-help"], capture_output=True, text=True)
    return "-not_before" in (r.stdout + r.stderr)


def _expired_fallback(ca, csr, ext, leaf, days):
    """Sign with `openssl ca`, which takes explicit -startdate/-enddate."""
    d = ca.dir / "ca-db"
    d.mkdir(exist_ok=True)
    (d / "index.txt").write_text("")
    (d / "serial").write_text(f"{ca._serial:04X}\n")
    conf = d / "ca.cnf"
    conf.write_text(
        "[ca]\ndefault_ca=d\n[d]\n"
        f"dir={d}\ndatabase=$dir/index.txt\nserial=$dir/serial\nnew_certs_dir=$dir\n"
        "default_md=sha256\npolicy=p\nunique_subject=no\ncopy_extensions=none\n"
        "[p]\ncommonName=supplied\n")
    start = datetime.datetime.utcnow() - datetime.timedelta(days=-days + 2)
    end = datetime.datetime.utcnow() - datetime.timedelta(days=-days)
    fmt = "%Y%m%d%H%M%SZ"
    _openssl("ca", "-batch", "-config", str(conf), "-in", str(csr), "-cert", str(ca.cert),
             "-keyfile", str(ca.key), "-startdate", start.strftime(fmt), "-enddate",
             end.strftime(fmt), "-extfile", str(ext), "-out", str(leaf.cert), "-notext")
