"""localhome — what the tests that run tern-local directly (test_local.py, test_local_ldap.py)
share: the unprivileged account they run it as (65534, "nobody"), chown_tree, and Home, a
throw-away HOME owned by that account with helpers to write files and make Maildirs.
Each test file subclasses Home with its own way of running tern-local."""
import os
import tempfile

UID = GID = 65534


def chown_tree(path):
    """path and everything under it (symlinks themselves) to UID:GID"""
    for root, dirs, files in os.walk(path):
        os.chown(root, UID, GID)
        for n in dirs + files:
            os.lchown(os.path.join(root, n), UID, GID)


class Home:
    """A HOME owned by nobody: a new temporary directory, or path (created) when given."""

    def __init__(self, path=None, prefix="tern-local-"):
        if path is None:
            path = tempfile.mkdtemp(prefix=prefix)
        else:
            os.makedirs(path)
        self.path = path
        os.chmod(path, 0o755)
        os.chown(path, UID, GID)

    def p(self, *names):
        return os.path.join(self.path, *names)

    def write(self, name, data, mode=0o644):
        if isinstance(data, str):
            data = data.encode()
        with open(self.p(name), "wb") as f:
            f.write(data)
        os.chmod(self.p(name), mode)
        os.chown(self.p(name), UID, GID)
        return self.p(name)

    def maildir(self, name="Maildir"):
        for sub in ("", "tmp", "new", "cur"):
            os.makedirs(self.p(name, sub), exist_ok=True)
        chown_tree(self.p(name))
