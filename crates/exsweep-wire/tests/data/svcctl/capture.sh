#!/bin/bash
# Re-make the svcctl (MS-SCMR) DCE/RPC test vectors in this directory.
#
# Starts a throwaway Samba (smbd + samba-dcerpcd, configured like the lab:
# "rpc start on demand helpers = no", "disable spoolss = yes", HKLM readable by
# Administrators + SYSTEM only) bound only to 127.0.0.98 (a /32 alias added to
# lo), records with tshark an impacket svcctl session as an admin account and
# then as a non-admin one (capture_client.py), cuts the raw DCE/RPC PDUs out of
# the SMB2 WRITE/READ payloads (../winreg/extract.py, unchanged), records what
# Samba's own client says ("net rpc service list/status", net.txt), decodes
# every stub with ndrdump and tshark (decode.py -> decoded.txt), and tears
# everything down again.  Needs root, samba (smbd, samba-dcerpcd, net,
# smbpasswd), tshark, ndrdump (samba-testsuite), python3 with impacket.
# Touches nothing outside $RUN except: the lo alias (removed), the unix users
# capuser (group capadm, the admin) and capplain (group capplain, not an admin),
# created if missing and left in place.
#
# Usage: ./capture.sh [all|up|down]   (as root; all = setup, capture, extract, teardown)
#        KEEP_PCAP=1 ./capture.sh      (also copy cap.pcapng here)
set -euo pipefail
umask 022

HERE=$(cd "$(dirname "$0")" && pwd)
RUN=${RUN:-/tmp/capsvcctl}
ADDR=127.0.0.98
CONF=$RUN/smb.conf
CCONF=$RUN/client.conf
PASS=Capture-Pass-1          # throwaway accounts on a loopback-only server
HKLM_SDDL='O:BAG:SYD:(A;;RPWPCCDCLCRCWOWDSDSW;;;BA)(A;;RPWPCCDCLCRCWOWDSDSW;;;SY)'
TSHARK_PID=

# PIDs whose argv names exactly our config file (smbd -s CONF, samba-dcerpcd
# -s CONF, rpcd_* --configfile=CONF).  No name patterns: other Samba
# instances on this machine (the lab's) are left alone.
our_pids() {
    local d args
    for d in /proc/[0-9]*; do
        args=$( { tr '\0' '\n' < "$d/cmdline"; } 2>/dev/null) || continue
        if printf '%s\n' "$args" | grep -qxF -- "--configfile=$CONF" ||
           printf '%s\n' "$args" | grep -qxF -- "$CONF"; then
            [ "${d#/proc/}" != "$$" ] && echo "${d#/proc/}"
        fi
    done
    return 0
}

teardown() {
    set +e
    [ -n "$TSHARK_PID" ] && kill -INT "$TSHARK_PID" 2>/dev/null && wait "$TSHARK_PID" 2>/dev/null
    for f in "$RUN/smbd.pid" "$RUN/dcerpcd.pid"; do
        [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null
    done
    sleep 2
    # samba-dcerpcd calls setsid and its rpcd_* workers outlive smbd
    for p in $(our_pids); do kill -TERM "$p" 2>/dev/null; done
    sleep 1
    for p in $(our_pids); do kill -KILL "$p" 2>/dev/null; done
    left=$(our_pids)
    [ -n "$left" ] && echo "WARNING: still running: $left" >&2
    ip addr del "$ADDR/32" dev lo 2>/dev/null
    true
}

start_daemon() {        # start_daemon PIDFILE CMD...: own session, no inherited fds
    local pidfile=$1; shift
    ( for fd in /proc/$BASHPID/fd/*; do
          fd=${fd##*/}; ((fd > 2)) && eval "exec $fd>&-"
      done
      exec setsid "$@" </dev/null >>"$RUN/log/daemons.out" 2>&1 ) &
    echo $! > "$pidfile"
}

setup() {
    rm -rf "$RUN"
    mkdir -p "$RUN"/{private,state,lock,pid,cache,ncalrpc,log,winbindd} "$RUN"/client/{lock,state,cache,private}
    chmod 0755 "$RUN"           # 0700 makes every winreg/svcctl registry read fail
    ip addr replace "$ADDR/32" dev lo
    cat > "$CONF" <<CONF
[global]
    workgroup = EXLAB
    netbios name = EXCAPTURE
    server string = exsweep svcctl capture
    server role = standalone server
    security = user
    map to guest = never
    passdb backend = tdbsam
    interfaces = $ADDR/32
    bind interfaces only = yes
    disable netbios = yes
    smb ports = 445
    server min protocol = SMB2_02
    server smb encrypt = off
    private dir = $RUN/private
    state directory = $RUN/state
    lock directory = $RUN/lock
    pid directory = $RUN/pid
    cache directory = $RUN/cache
    ncalrpc dir = $RUN/ncalrpc
    winbindd socket directory = $RUN/winbindd
    log file = $RUN/log/%m.log
    log level = 1
    rpc start on demand helpers = no
    rpcd_classic:idle_seconds = 86400
    rpcd_winreg:idle_seconds = 86400
    rpcd_lsad:idle_seconds = 86400
    rpcd_epmapper:idle_seconds = 86400
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = ${DISABLE_SPOOLSS:-yes}
    show add printer wizard = no
    registry shares = no
CONF
    cat > "$CCONF" <<CONF
[global]
    workgroup = EXLAB
    client min protocol = SMB2_02
    lock directory = $RUN/client/lock
    state directory = $RUN/client/state
    cache directory = $RUN/client/cache
    private dir = $RUN/client/private
    pid directory = $RUN/client/lock
    ncalrpc dir = $RUN/client/lock
    log level = 0
    load printers = no
CONF
    getent group capadm >/dev/null || groupadd capadm
    id capuser >/dev/null 2>&1 || useradd -M -N -g capadm -s /usr/sbin/nologin capuser
    getent group capplain >/dev/null || groupadd capplain
    id capplain >/dev/null 2>&1 || useradd -M -N -g capplain -s /usr/sbin/nologin capplain
    for u in capuser capplain; do
        printf '%s\n%s\n' "$PASS" "$PASS" | smbpasswd -c "$CONF" -a -s "$u" >/dev/null
    done
    net -s "$CONF" groupmap add sid=S-1-5-32-544 unixgroup=capadm type=builtin ntgroup=Administrators >/dev/null
    net -s "$CONF" registry setsd_sddl HKLM "$HKLM_SDDL"
    for u in capuser capplain; do
        printf 'username = %s\npassword = %s\ndomain = EXLAB\n' "$u" "$PASS" > "$RUN/$u.auth"
        chmod 0600 "$RUN/$u.auth"
    done
    start_daemon "$RUN/dcerpcd.pid" /usr/libexec/samba/samba-dcerpcd --libexec-rpcds \
        --foreground -s "$CONF" -l "$RUN/log"
    start_daemon "$RUN/smbd.pid" smbd --foreground --no-process-group -s "$CONF"
    for _ in $(seq 100); do
        ss -ltn | grep -q "$ADDR:445 " && [ -S "$RUN/ncalrpc/np/svcctl" ] && break
        sleep 0.1
    done
    ss -ltn | grep -q "$ADDR:445 " || { echo "smbd did not come up" >&2; exit 1; }
    [ -S "$RUN/ncalrpc/np/svcctl" ] || { echo "samba-dcerpcd did not bind np/svcctl" >&2; exit 1; }
}

capture() {
    tshark -i lo -f "host $ADDR and port 445" -w "$RUN/cap.pcapng" 2>"$RUN/tshark.err" &
    TSHARK_PID=$!
    for _ in $(seq 50); do grep -q Capturing "$RUN/tshark.err" && break; sleep 0.2; done
    python3 "$HERE/capture_client.py" "$RUN/labels.txt" "$PASS" | tee "$RUN/client.txt"
    sleep 1
    kill -INT "$TSHARK_PID"; wait "$TSHARK_PID" || true
    TSHARK_PID=
}

# Samba's own client (not recorded): the independent values MANIFEST.md compares.
net_client() {
    local u s rc out=$RUN/net.txt
    : > "$out"
    for u in capuser capplain; do
        {
            echo "### net rpc service list -S $ADDR (as $u)"
            rc=0; net -s "$CCONF" rpc service list -S "$ADDR" -A "$RUN/$u.auth" 2>&1 || rc=$?
            echo "exit $rc"
            for s in Spooler NETLOGON RemoteRegistry WINS NoSuchService; do
                echo "### net rpc service status $s -S $ADDR (as $u)"
                rc=0; net -s "$CCONF" rpc service status "$s" -S "$ADDR" -A "$RUN/$u.auth" 2>&1 || rc=$?
                echo "exit $rc"
            done
        } >> "$out"
    done
    cat "$out"
}

case "${1:-all}" in
    up)   setup ;;                                  # debugging: leave the server running
    down) teardown ;;
    all)
        trap teardown EXIT
        setup
        capture
        net_client
        python3 "$HERE/../winreg/extract.py" "$RUN/cap.pcapng" "$RUN/labels.txt" "$HERE" \
            > "$RUN/index.txt"
        cat "$RUN/index.txt"
        python3 "$HERE/decode.py" "$RUN/cap.pcapng" "$RUN/index.txt" "$HERE" > "$RUN/decoded.txt"
        cp "$RUN/net.txt" "$RUN/decoded.txt" "$RUN/client.txt" "$HERE/" 
        if [ "${KEEP_PCAP:-0}" = 1 ]; then
            cp "$RUN/cap.pcapng" "$HERE/cap.pcapng" && chmod 0644 "$HERE/cap.pcapng"
        fi
        echo "capture done: $RUN/cap.pcapng"
        ;;
esac
