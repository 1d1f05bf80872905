#!/usr/bin/env bash
# Make sure what the tests talk to is there: Debian's Chromium (browser tests),
# dovecot (the IMAP tests start their own), PostgreSQL and Redis on loopback.
# Installs and starts only what is missing, and only where it can (as root on
# Debian, as in CI); elsewhere it says what is missing and the tests that need
# it skip with the reason (never under CI=true).
set -u

can_root() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }
apt_updated=""
apt_install() {
    if ! can_root; then
        echo "start-servers: $1 missing and not root on Debian; tests needing it will skip" >&2
        return 0
    fi
    [ -n "$apt_updated" ] || { apt-get update -qq >/dev/null && apt_updated=1; }
    echo "start-servers: installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

[ -x /usr/bin/chromium ] || apt_install chromium
# The package's own service may refuse to start here; the tests run their own dovecot.
[ -x /usr/sbin/dovecot ] || apt_install dovecot-imapd

if ! (command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432); then
    if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then
        echo "start-servers: starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
    else
        echo "start-servers: no PostgreSQL on 127.0.0.1:5432" >&2
    fi
fi

if ! (command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1); then
    if command -v redis-server >/dev/null; then
        echo "start-servers: starting Redis"
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    else
        echo "start-servers: no Redis on 127.0.0.1:6379" >&2
    fi
fi
exit 0
