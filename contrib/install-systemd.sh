#!/bin/sh
# Install itaudit as a systemd service, in one command (as root, from the source tree):
#
#   sudo contrib/install-systemd.sh            # the agent daemon (itaudit-agent.service)
#
# It creates, each only when missing (a second run upgrades itaudit and keeps your files):
#   /opt/itaudit/venv            a virtual environment with itaudit installed (from this tree,
#                                or --from WHEEL), and /opt/itaudit/docs
#   itaudit                      a system user and group (no login, no home outside /var/lib)
#   /etc/itaudit                 root:itaudit 0750: config.toml (starter config, 0640, with
#                                data_dir = /var/lib/itaudit), env (secrets, 0640), keys/ (0750)
#   /var/lib/itaudit             itaudit:itaudit 0700: databases, reports, outbox
#   /etc/systemd/system/         itaudit-agent.service, itaudit-scan.service, itaudit-scan.timer
# and then says what to do next: edit the config, put the secrets in /etc/itaudit/env, and
# `systemctl enable --now itaudit-agent` (or the timer). Nothing is enabled or started here:
# the starter config must be edited first. See docs/agent.md ("systemd").
#
# Options:
#   --from PATH      install this wheel, sdist or folder instead of the source tree
#   --python PY      the Python (3.11+) that builds the venv (default: python3)
#   --root DIR       stage every file under DIR and skip the user, chown and systemctl
#                    (for tests and packaging)
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
FROM=$SRC
PYTHON=python3
ROOT=
PREFIX=/opt/itaudit
CONF=/etc/itaudit
DATA=/var/lib/itaudit
UNITS=/etc/systemd/system
ACCOUNT=itaudit

die() { echo "install-systemd: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --from) [ $# -ge 2 ] || die "--from needs a path"; FROM=$2; shift 2 ;;
    --python) [ $# -ge 2 ] || die "--python needs a program"; PYTHON=$2; shift 2 ;;
    --root) [ $# -ge 2 ] || die "--root needs a folder"; ROOT=$(cd "$2" && pwd) || die "no folder $2"; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo $0), or stage the files with --root DIR"
fi
command -v "$PYTHON" >/dev/null 2>&1 || die "no $PYTHON: install Python 3.11 or newer (apt-get install python3 python3-venv)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$PYTHON is $("$PYTHON" -V 2>&1); itaudit needs Python 3.11 or newer"
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null \
  || die "$PYTHON cannot create a virtual environment: apt-get install python3-venv"
[ -e "$FROM" ] || die "nothing to install at $FROM"

# Ownership: root:itaudit and itaudit:itaudit on a real install; the caller's when staging.
own() { [ -n "$ROOT" ] || chown "$1" "$2"; }

# 1. The account the units run as.
if [ -z "$ROOT" ] && ! getent passwd "$ACCOUNT" >/dev/null; then
  useradd --system --user-group --home-dir "$DATA" --no-create-home --shell /usr/sbin/nologin "$ACCOUNT"
  echo "created the system user $ACCOUNT"
fi

# 2. The virtual environment, with itaudit (a second run upgrades it).
VENV=$ROOT$PREFIX/venv
upgrade=
[ -x "$VENV/bin/itaudit" ] && upgrade=yes
install -d -m 0755 "$ROOT$PREFIX"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
echo "installing itaudit from $FROM into $VENV (pip, about a minute) ..."
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$FROM"
if [ -n "$upgrade" ]; then  # the same version number from a newer tree: reinstall the code
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$FROM"
fi
install -d -m 0755 "$ROOT$PREFIX/docs"
install -m 0644 "$SRC"/docs/*.md "$ROOT$PREFIX/docs/"
"$VENV/bin/itaudit" --version

# 3. Config folder: readable by the service, writable by root only.
install -d -m 0750 "$ROOT$CONF" "$ROOT$CONF/keys"
own "root:$ACCOUNT" "$ROOT$CONF"
own "root:$ACCOUNT" "$ROOT$CONF/keys"
if [ ! -e "$ROOT$CONF/config.toml" ]; then
  "$VENV/bin/python" - "$ROOT$CONF/config.toml" "$DATA" <<'PY'
import os
import sys
from importlib.resources import files

path, data_dir = sys.argv[1], sys.argv[2]
text = files("itaudit").joinpath("data/config.example.toml").read_text(encoding="utf-8")
lines = [f'data_dir = "{data_dir}"' if line.startswith("data_dir =") else line for line in text.splitlines()]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
with os.fdopen(fd, "w", encoding="utf-8") as fh:
    fh.write("\n".join(lines) + "\n")
PY
  chmod 0640 "$ROOT$CONF/config.toml"
  own "root:$ACCOUNT" "$ROOT$CONF/config.toml"
  echo "wrote the starter config $CONF/config.toml (data_dir = $DATA): edit it before starting"
fi
if [ ! -e "$ROOT$CONF/env" ]; then
  (umask 027; cat >"$ROOT$CONF/env" <<'ENV'
# Secrets for itaudit, one VAR=value a line, named by the *_env keys of config.toml
# (e.g. SPRINGFIELD_SSH_PASSWORD=..., ITAUDIT_SMTP_PASSWORD=...). Readable by root and the
# itaudit group only; the units read it with EnvironmentFile=.
ENV
  )
  chmod 0640 "$ROOT$CONF/env"
  own "root:$ACCOUNT" "$ROOT$CONF/env"
fi

# 4. Data folder: the service's only writable place (ReadWritePaths=).
install -d -m 0700 "$ROOT$DATA"
own "$ACCOUNT:$ACCOUNT" "$ROOT$DATA"

# 5. The units.
install -d -m 0755 "$ROOT$UNITS"
install -m 0644 "$SRC/contrib/itaudit-agent.service" "$SRC/contrib/itaudit-scan.service" \
  "$SRC/contrib/itaudit-scan.timer" "$ROOT$UNITS/"
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi

command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
  || echo "note: no Chromium found; the monthly email goes without the PDF until you apt-get install chromium"

cat <<EOF

itaudit is installed. Next:
  1. edit $CONF/config.toml (cities, targets, credentials: every key is explained in it)
  2. put the secrets it names in $CONF/env; SSH keys in $CONF/keys/ (chmod 0640, group $ACCOUNT)
  3. check it:  sudo -u $ACCOUNT $PREFIX/venv/bin/itaudit agent -c $CONF/config.toml --once --dry-run
  4. start it:  systemctl enable --now itaudit-agent
     (or, for one daily run instead of the daemon: systemctl enable --now itaudit-scan.timer)
  Logs: journalctl -u itaudit-agent    Status: sudo -u $ACCOUNT $PREFIX/venv/bin/itaudit agent -c $CONF/config.toml --status
EOF
