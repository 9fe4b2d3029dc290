"""A real LDAP directory for the tests: OpenLDAP `slapd` (Debian package slapd, clients from
ldap-utils) run as the current user from a config and database in a temporary directory.

    ldap = Slapd(tmp_path / "ldap").start()
    try:
        ldap.url                                  # ldap://127.0.0.1:PORT
        dn = ldap.add_user("dave", "dave-pass")   # uid=dave,ou=people,dc=strata,dc=test
        ldap.add_group("auditors", [dn])          # cn=auditors,ou=groups,dc=strata,dc=test
        ...
    finally:
        ldap.stop()

Invariants kept here:
- Nothing outside `workdir` is read or written except the schema files in /etc/ldap/schema and
  the backend modules in /usr/lib/ldap: slapd runs with `-f workdir/slapd.conf` (never the
  system's cn=config in /etc/ldap/slapd.d), its mdb database is `workdir/db`, its pid file is
  `workdir/slapd.pid`, and the LDAP client tools run with LDAPNOINIT=1 so /etc/ldap/ldap.conf
  and ~/.ldaprc are ignored. The system slapd service is never started or configured.
- slapd listens only on ldap://127.0.0.1:PORT/ (a free port, never 389), in the foreground
  (`-d stats`, which also does not fork); its output (one line per connection, bind, search,
  result; never passwords) goes to `workdir/slapd.log`. Failures raise RuntimeError with the
  tail of that log.
- Every slapd started here is stopped by `stop()` (SIGTERM, then SIGKILL after a bound), and at
  interpreter exit if a test forgot to.

Directory (suffix dc=strata,dc=test, loaded with slapadd before slapd starts):
    cn=admin,dc=strata,dc=test      rootdn, password admin-secret (may do anything)
    cn=lookup,dc=strata,dc=test     read-only service account, password lookup-secret: may read
                                    every entry and attribute, write nothing
    ou=people,dc=strata,dc=test     users: uid=<uid>,ou=people,... (inetOrgPerson: cn, sn, uid,
                                    userPassword as a salted SHA-1 {SSHA} hash)
        alice / alice-pass, bob / bob-pass, carol / carol-pass
    ou=groups,dc=strata,dc=test     groups: cn=<cn>,ou=groups,... (groupOfNames, member = user DN)
        readers: alice   writers: alice, bob   admins: carol
Access: userPassword is usable for simple bind by anyone (`auth`) and readable by the lookup
account; every other attribute is readable by the lookup account and by the entry itself.
Anonymous and other users see nothing (a search must bind as the lookup account).
An empty password is an unauthenticated bind, which slapd refuses ("unwilling to perform").
"""
from __future__ import annotations

import atexit
import base64
import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from conftest import free_port
from procs import stop_process_group

BASE_DN = "dc=strata,dc=test"
ADMIN_DN = "cn=admin,dc=strata,dc=test"
ADMIN_PASSWORD = "admin-secret"
LOOKUP_DN = "cn=lookup,dc=strata,dc=test"
LOOKUP_PASSWORD = "lookup-secret"
PEOPLE_DN = "ou=people," + BASE_DN
GROUPS_DN = "ou=groups," + BASE_DN

USERS = {"alice": "alice-pass", "bob": "bob-pass", "carol": "carol-pass"}
GROUPS = {"readers": ["alice"], "writers": ["alice", "bob"], "admins": ["carol"]}

SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
READY_TIMEOUT_SECS = 20
STOP_TIMEOUT_SECS = 10
TOOL_TIMEOUT_SECS = 60
LOG_TAIL_LINES = 40
START_ATTEMPTS = 3  # a fresh port each time slapd finds its port taken

_LIVE: list["Slapd"] = []


def _tool(name: str) -> str:
    """Path of an OpenLDAP program; slapd and slapadd live in /usr/sbin, which a non-root PATH
    may lack."""
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/usr/bin", "/sbin"):
        if os.access(f"{d}/{name}", os.X_OK):
            return f"{d}/{name}"
    raise RuntimeError(f"{name} not found: install the Debian packages slapd and ldap-utils "
                       "(tests/run.sh does)")


def _tool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDAP")}
    env["LDAPNOINIT"] = "1"  # ignore /etc/ldap/ldap.conf, ~/.ldaprc and LDAP* variables
    return env


def ssha(password: str) -> str:
    """An RFC 2307 {SSHA} userPassword value (what `slappasswd -h {SSHA}` makes)."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def dn_escape(value: str) -> str:
    """An attribute value escaped for use in a DN (RFC 4514)."""
    out = []
    for i, ch in enumerate(value):
        if ch in '\\,+"<>;=':
            out.append("\\" + ch)
        elif ch == "\0":
            out.append("\\00")
        elif (i == 0 and ch in "# ") or (i == len(value) - 1 and ch == " "):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


_SAFE_LDIF = re.compile(r"^[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f]"
                        r"[\x01-\x09\x0b\x0c\x0e-\x7f]*$")


def ldif_line(attr: str, value: str) -> str:
    """`attr: value`, or `attr:: base64` when the value is not LDIF-safe (RFC 2849)."""
    if value == "" or (_SAFE_LDIF.match(value) and not value.endswith(" ")):
        return f"{attr}: {value}"
    return f"{attr}:: {base64.b64encode(value.encode()).decode()}"


def ldif_entry(dn: str, attrs: list[tuple[str, str]]) -> str:
    return "\n".join([ldif_line("dn", dn)] + [ldif_line(a, v) for a, v in attrs]) + "\n"


def user_dn(uid: str) -> str:
    return f"uid={dn_escape(uid)},{PEOPLE_DN}"


def group_dn(cn: str) -> str:
    return f"cn={dn_escape(cn)},{GROUPS_DN}"


def user_entry(uid: str, password: str) -> str:
    return ldif_entry(user_dn(uid), [("objectClass", "inetOrgPerson"), ("uid", uid),
                                     ("cn", uid), ("sn", uid), ("userPassword", ssha(password))])


def group_entry(cn: str, member_dns: list[str]) -> str:
    # groupOfNames needs at least one member; an empty group gets the conventional empty DN.
    members = list(member_dns) or [""]
    return ldif_entry(group_dn(cn), [("objectClass", "groupOfNames"), ("cn", cn)]
                      + [("member", m) for m in members])


def parse_ldif(text: str) -> list[tuple[str, dict[str, list[str]]]]:
    """(dn, {attribute: [values]}) for each entry of ldapsearch's LDIF output (comments skipped,
    folded lines joined, base64 values decoded). Attribute names keep the server's spelling."""
    entries: list[tuple[str, dict[str, list[str]]]] = []
    lines: list[str] = []
    for raw in text.splitlines():
        if raw.startswith(" ") and lines:
            lines[-1] += raw[1:]
        else:
            lines.append(raw)
    dn: str | None = None
    attrs: dict[str, list[str]] = {}
    for line in lines + [""]:
        if line.startswith("#"):
            continue
        if line == "":
            if dn is not None:
                entries.append((dn, attrs))
            dn, attrs = None, {}
            continue
        attr, _, rest = line.partition(":")
        if rest.startswith(":"):
            value = base64.b64decode(rest[1:].strip()).decode(errors="replace")
        else:
            value = rest[1:] if rest.startswith(" ") else rest
        if attr.lower() == "dn" and dn is None:
            dn = value
        else:
            attrs.setdefault(attr, []).append(value)
    return entries


class Slapd:
    """One OpenLDAP slapd on 127.0.0.1 with the test directory described above."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf_path = self.workdir / "slapd.conf"
        self.db_dir = self.workdir / "db"
        self.pid_path = self.workdir / "slapd.pid"
        self.log_path = self.workdir / "slapd.log"
        self.proc: subprocess.Popen | None = None
        self.n_starts = 0
        self._loaded = False

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @staticmethod
    def user_dn(uid: str) -> str:
        return user_dn(uid)

    @staticmethod
    def group_dn(cn: str) -> str:
        return group_dn(cn)

    # ------------------------------------------------------------------ config and data

    def _write_conf(self) -> None:
        missing = [s for s in SCHEMAS if not (SCHEMA_DIR / f"{s}.schema").is_file()]
        if missing or not (MODULE_DIR / "back_mdb.so").exists():
            raise RuntimeError(f"OpenLDAP schemas {missing} or {MODULE_DIR}/back_mdb.so missing: "
                               "install the Debian package slapd (tests/run.sh does)")
        w = self.workdir
        conf = [f"include {SCHEMA_DIR}/{s}.schema" for s in SCHEMAS] + [
            f"pidfile {w}/slapd.pid",
            f"argsfile {w}/slapd.args",
            f"modulepath {MODULE_DIR}",
            "moduleload back_mdb",
            "",
            "database mdb",
            f'suffix "{BASE_DN}"',
            f'rootdn "{ADMIN_DN}"',
            f"rootpw {ssha(ADMIN_PASSWORD)}",
            f"directory {self.db_dir}",
            "maxsize 268435456",  # 256 MiB map (a sparse file); the default is 10 MiB
            "dbnosync",           # test data: no fsync per write
            "index objectClass eq",
            "index uid,cn eq",
            "index member eq",
            "",
            "access to attrs=userPassword",
            f'    by dn.exact="{LOOKUP_DN}" read',
            "    by anonymous auth",
            "    by * none",
            "access to *",
            f'    by dn.exact="{LOOKUP_DN}" read',
            "    by self read",
            "    by * none",
            "",
        ]
        self.conf_path.write_text("\n".join(conf))

    def _base_ldif(self) -> str:
        entries = [
            ldif_entry(BASE_DN, [("objectClass", "dcObject"), ("objectClass", "organization"),
                                 ("dc", "strata"), ("o", "Strata tests")]),
            ldif_entry(PEOPLE_DN, [("objectClass", "organizationalUnit"), ("ou", "people")]),
            ldif_entry(GROUPS_DN, [("objectClass", "organizationalUnit"), ("ou", "groups")]),
            ldif_entry(LOOKUP_DN, [("objectClass", "organizationalRole"),
                                   ("objectClass", "simpleSecurityObject"), ("cn", "lookup"),
                                   ("userPassword", ssha(LOOKUP_PASSWORD)),
                                   ("description", "read-only lookup account")]),
        ]
        entries += [user_entry(u, p) for u, p in USERS.items()]
        entries += [group_entry(g, [user_dn(u) for u in members]) for g, members in GROUPS.items()]
        return "\n".join(entries)

    def _load_base(self) -> None:
        self._write_conf()
        if self.db_dir.exists():
            shutil.rmtree(self.db_dir)
        self.db_dir.mkdir(mode=0o700)
        r = subprocess.run([_tool("slapadd"), "-f", str(self.conf_path), "-b", BASE_DN],
                           input=self._base_ldif(), env=_tool_env(), capture_output=True,
                           text=True, timeout=TOOL_TIMEOUT_SECS)
        if r.returncode != 0:
            raise RuntimeError(f"slapadd failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
        self._loaded = True

    # ------------------------------------------------------------------ process

    def start(self) -> "Slapd":
        """Writes the config, loads the base entries (first start only; a restart keeps the
        database), starts slapd and waits until the lookup account can search."""
        assert self.proc is None, "slapd already running"
        if not self._loaded:
            self._load_base()
        for attempt in range(1, START_ATTEMPTS + 1):
            self._spawn()
            try:
                self._wait_ready()
                return self
            except _PortTaken:
                self.stop()
                if attempt == START_ATTEMPTS:
                    raise RuntimeError(f"slapd could not bind a port in {START_ATTEMPTS} "
                                       f"attempts\n{self.log_tail()}") from None
                self.port = free_port()
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def command(self) -> list[str]:
        return [_tool("slapd"), "-h", f"ldap://127.0.0.1:{self.port}/", "-f", str(self.conf_path),
                "-d", "stats"]

    def _spawn(self) -> None:
        cmd = self.command()
        self.n_starts += 1
        self.pid_path.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.n_starts}: {' '.join(cmd)}\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=_tool_env(),
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        _LIVE.append(self)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECS
        last = ""
        while True:
            code = self.proc.poll() if self.proc is not None else -1
            if code is not None:
                with open(self.log_path, "rb") as f:
                    f.seek(self._log_offset)
                    out = f.read()
                if b"Address already in use" in out:
                    raise _PortTaken()
                raise RuntimeError(f"slapd exited with code {code} before it was ready\n"
                                   f"{self.log_tail()}")
            # slapd writes its pid file only after it has bound its listener, so until it holds
            # our pid, a server answering on the port may be another process's.
            try:
                ours = int(self.pid_path.read_text().strip() or 0) == self.proc.pid
            except (OSError, ValueError):
                ours = False
            if not ours:
                last = "no pid file yet"
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"slapd not ready within {READY_TIMEOUT_SECS}s ({last})\n"
                                       f"{self.log_tail()}")
                time.sleep(0.05)
                continue
            r = subprocess.run([_tool("ldapsearch"), "-x", "-H", self.url, "-b", BASE_DN,
                                "-s", "base", "-D", LOOKUP_DN, "-w", LOOKUP_PASSWORD, "-LLL",
                                "-o", "nettimeout=2", "dn"],
                               env=_tool_env(), stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=TOOL_TIMEOUT_SECS)
            if r.returncode == 0 and f"dn: {BASE_DN}" in r.stdout:
                return
            last = f"ldapsearch exit {r.returncode}: {r.stdout.strip()} {r.stderr.strip()}"
            if time.monotonic() >= deadline:
                raise RuntimeError(f"slapd not ready within {READY_TIMEOUT_SECS}s ({last})\n"
                                   f"{self.log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL (the whole process group) if it does not exit in time.
        Safe to call when stopped. The database in workdir stays (start() again reuses it)."""
        proc, self.proc = self.proc, None
        if self in _LIVE:
            _LIVE.remove(self)
        if proc is None:
            return
        stop_process_group(proc, STOP_TIMEOUT_SECS)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> "Slapd":
        return self if self.running else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, n: int = LOG_TAIL_LINES) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return f"(no slapd log at {self.log_path})"
        return f"--- last {min(n, len(lines))} lines of {self.log_path} ---\n" + "\n".join(lines[-n:])

    # ------------------------------------------------------------------ client tools

    def _run(self, args: list[str], input: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(args, input=input, env=_tool_env(), capture_output=True, text=True,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           timeout=TOOL_TIMEOUT_SECS)
        if check and r.returncode != 0:
            shown = ["***" if i > 0 and args[i - 1] == "-w" else a for i, a in enumerate(args)]
            raise RuntimeError(f"{' '.join(shown)} failed (exit {r.returncode}):\n"
                               f"{r.stdout}{r.stderr}")
        return r

    def ldapadd(self, ldif: str) -> None:
        """Adds the entries of `ldif` (one ldapadd connection, bound as the admin)."""
        self._run([_tool("ldapadd"), "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD],
                  input=ldif)

    def ldapmodify(self, ldif: str) -> None:
        """Applies an LDIF change record set (changetype: ...) as the admin."""
        self._run([_tool("ldapmodify"), "-x", "-H", self.url, "-D", ADMIN_DN,
                   "-w", ADMIN_PASSWORD], input=ldif)

    def delete(self, *dns: str) -> None:
        self._run([_tool("ldapdelete"), "-x", "-H", self.url, "-D", ADMIN_DN,
                   "-w", ADMIN_PASSWORD] + list(dns))

    def add_user(self, uid: str, password: str) -> str:
        """Adds uid=<uid>,ou=people,dc=strata,dc=test with that password; returns its DN."""
        self.ldapadd(user_entry(uid, password))
        return user_dn(uid)

    def add_users(self, users: dict[str, str]) -> list[str]:
        """Adds many users {uid: password} with one ldapadd; returns their DNs."""
        self.ldapadd("\n".join(user_entry(u, p) for u, p in users.items()))
        return [user_dn(u) for u in users]

    def add_group(self, cn: str, member_dns: list[str]) -> str:
        """Adds cn=<cn>,ou=groups,dc=strata,dc=test (groupOfNames); returns its DN."""
        self.ldapadd(group_entry(cn, member_dns))
        return group_dn(cn)

    def add_groups(self, groups: dict[str, list[str]]) -> list[str]:
        """Adds many groups {cn: [member DNs]} with one ldapadd; returns their DNs."""
        self.ldapadd("\n".join(group_entry(cn, m) for cn, m in groups.items()))
        return [group_dn(cn) for cn in groups]

    def set_password(self, uid: str, password: str) -> None:
        self.ldapmodify(f"{ldif_line('dn', user_dn(uid))}\nchangetype: modify\n"
                        f"replace: userPassword\n{ldif_line('userPassword', ssha(password))}\n")

    def add_member(self, cn: str, member_dn: str) -> None:
        self.ldapmodify(f"{ldif_line('dn', group_dn(cn))}\nchangetype: modify\n"
                        f"add: member\n{ldif_line('member', member_dn)}\n")

    def remove_member(self, cn: str, member_dn: str) -> None:
        self.ldapmodify(f"{ldif_line('dn', group_dn(cn))}\nchangetype: modify\n"
                        f"delete: member\n{ldif_line('member', member_dn)}\n")

    def search(self, filter: str = "(objectClass=*)", base: str = BASE_DN,
               attrs: list[str] | None = None, scope: str = "sub", bind_dn: str = LOOKUP_DN,
               password: str = LOOKUP_PASSWORD) -> list[tuple[str, dict[str, list[str]]]]:
        """ldapsearch bound as `bind_dn` (the lookup account by default); returns
        [(dn, {attribute: [values]})]. A missing base is an empty result."""
        r = self._run([_tool("ldapsearch"), "-x", "-H", self.url, "-D", bind_dn, "-w", password,
                       "-b", base, "-s", scope, "-LLL", "-o", "ldif-wrap=no", filter]
                      + list(attrs or []), check=False)
        if r.returncode == 32:  # noSuchObject
            return []
        if r.returncode != 0:
            raise RuntimeError(f"ldapsearch -b {base} {filter} as {bind_dn} failed "
                               f"(exit {r.returncode}): {r.stderr.strip()}")
        return parse_ldif(r.stdout)

    def whoami(self, dn: str, password: str) -> subprocess.CompletedProcess:
        """`ldapwhoami -x` (a simple bind) as `dn`; returncode 0 on success, 49 on invalid
        credentials. Never raises on a failed bind."""
        return self._run([_tool("ldapwhoami"), "-x", "-H", self.url, "-D", dn, "-w", password],
                         check=False)


class _PortTaken(Exception):
    pass


@atexit.register
def _stop_all() -> None:
    for s in list(_LIVE):
        s.stop()
