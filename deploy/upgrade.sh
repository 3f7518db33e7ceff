#!/usr/bin/env bash
# Upgrade an installed appliance in place: dependencies, migrations, static files, checks, restart.
# Run as root from the new checkout at /opt/appliance (or APPLIANCE_HOME):  deploy/upgrade.sh
# Migrations run here, never at service start, so a failed migration stops the upgrade before restarts.
set -euo pipefail

APPLIANCE_HOME="${APPLIANCE_HOME:-/opt/appliance}"
ENV_FILE="${APPLIANCE_ENV_FILE:-/etc/appliance/appliance.env}"
RUN_AS="${APPLIANCE_USER:-appliance}"
UNITS=(appliance-web appliance-worker appliance-beat)

cd "$APPLIANCE_HOME"
[ -r "$ENV_FILE" ] || { echo "upgrade: $ENV_FILE is missing (start from deploy/appliance.env.example)" >&2; exit 1; }

# Run a command as the service user with the same environment systemd gives the units.
as_app() { runuser -u "$RUN_AS" -- bash -c 'set -a; . "$0"; set +a; exec "$@"' "$ENV_FILE" "$@"; }

echo "upgrade: installing Python dependencies"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
chown -R "$RUN_AS": .venv

echo "upgrade: checking the configuration"
as_app .venv/bin/python manage.py check --deploy --fail-level WARNING

echo "upgrade: migrating the database"
as_app .venv/bin/python manage.py migrate --noinput

echo "upgrade: collecting static files"
as_app .venv/bin/python manage.py collectstatic --noinput

echo "upgrade: installing systemd units"
install -m 0644 deploy/systemd/*.service /etc/systemd/system/
systemctl daemon-reload

echo "upgrade: restarting ${UNITS[*]}"
systemctl restart "${UNITS[@]}"
# proxyd is restarted last and only on request: a restart drops live streams.
if [ "${APPLIANCE_RESTART_PROXYD:-0}" = "1" ]; then
  systemctl restart appliance-proxyd
else
  echo "upgrade: appliance-proxyd left running (set APPLIANCE_RESTART_PROXYD=1 to restart it)"
fi
systemctl --no-pager --lines=0 status "${UNITS[@]}" appliance-proxyd || true
echo "upgrade: done"
