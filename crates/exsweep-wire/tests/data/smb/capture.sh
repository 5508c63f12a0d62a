#!/bin/bash
# Re-make the SMB negotiate / NTLM CHALLENGE test vectors in this directory.
#
# Starts two throwaway Samba smbd, each bound only to its own /32 alias on lo:
#   127.0.0.98  "min2"  server min protocol = SMB2_02 (the lab's setting)
#   127.0.0.97  "nt1"   server min protocol = NT1
# (otherwise the same but for the NetBIOS name, EXCAPTURE / EXCAPNT1:
# standalone, workgroup EXLAB, server signing default, no NetBIOS, port 445
# only, no printing), records with tshark the hand-made probes of
# smb_probe.py against both, then (in the same capture, later TCP streams)
# smbclient and impacket cross-checks, cuts every SMB message out of the TCP
# streams (extract.py), decodes them with tshark (decoded.txt) and tears
# everything down again.  Needs root, samba (smbd, smbclient), tshark, python3
# with impacket.  Touches nothing outside $RUN except the two lo aliases
# (removed again).
#
# Usage: ./capture.sh [all|up|down]   (as root)
#        KEEP_PCAP=1 ./capture.sh      (also copy cap.pcapng here)
set -euo pipefail
umask 022

HERE=$(cd "$(dirname "$0")" && pwd)
RUN=${RUN:-/tmp/capsmbneg}
A98=127.0.0.98
A97=127.0.0.97
TSHARK_PID=

our_pids() {
    local d args c
    for d in /proc/[0-9]*; do
        args=$( { tr '\0' '\n' < "$d/cmdline"; } 2>/dev/null) || continue
        for c in "$RUN/min2/smb.conf" "$RUN/nt1/smb.conf"; do
            if printf '%s\n' "$args" | grep -qxF -- "--configfile=$c" ||
               printf '%s\n' "$args" | grep -qxF -- "$c"; then
                [ "${d#/proc/}" != "$$" ] && echo "${d#/proc/}"
            fi
        done
    done
    return 0
}

teardown() {
    set +e
    [ -n "$TSHARK_PID" ] && kill -INT "$TSHARK_PID" 2>/dev/null && wait "$TSHARK_PID" 2>/dev/null
    for f in "$RUN"/*/smbd.pid; do
        [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null
    done
    sleep 1.5
    for p in $(our_pids); do kill -TERM "$p" 2>/dev/null; done     # e.g. on-demand samba-dcerpcd
    sleep 1
    for p in $(our_pids); do kill -KILL "$p" 2>/dev/null; done
    left=$(our_pids)
    [ -n "$left" ] && echo "WARNING: still running: $left" >&2
    ip addr del "$A98/32" dev lo 2>/dev/null
    ip addr del "$A97/32" dev lo 2>/dev/null
    true
}

start_daemon() {        # start_daemon PIDFILE LOG CMD...: own session, no inherited fds
    local pidfile=$1 log=$2; shift 2
    ( for fd in /proc/$BASHPID/fd/*; do
          fd=${fd##*/}; ((fd > 2)) && eval "exec $fd>&-"
      done
      exec setsid "$@" </dev/null >>"$log" 2>&1 ) &
    echo $! > "$pidfile"
}

server() {              # server NAME ADDR NETBIOS MINPROTO
    local d=$RUN/$1
    mkdir -p "$d"/{private,state,lock,pid,cache,ncalrpc,log,winbindd}
    cat > "$d/smb.conf" <<CONF
[global]
    workgroup = EXLAB
    netbios name = $3
    server string = exsweep smb capture $1
    server role = standalone server
    security = user
    map to guest = never
    passdb backend = tdbsam
    interfaces = $2/32
    bind interfaces only = yes
    disable netbios = yes
    smb ports = 445
    server min protocol = $4
    server signing = default
    private dir = $d/private
    state directory = $d/state
    lock directory = $d/lock
    pid directory = $d/pid
    cache directory = $d/cache
    ncalrpc dir = $d/ncalrpc
    winbindd socket directory = $d/winbindd
    log file = $d/log/%m.log
    log level = 1
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
CONF
    start_daemon "$d/smbd.pid" "$d/log/smbd.out" smbd --foreground --no-process-group -s "$d/smb.conf"
}

setup() {
    rm -rf "$RUN"
    mkdir -p "$RUN"/client/{lock,state,cache,private}
    chmod 0755 "$RUN"
    ip addr replace "$A98/32" dev lo
    ip addr replace "$A97/32" dev lo
    server min2 "$A98" EXCAPTURE SMB2_02
    server nt1 "$A97" EXCAPNT1 NT1
    cat > "$RUN/client.conf" <<CONF
[global]
    workgroup = EXLAB
    lock directory = $RUN/client/lock
    state directory = $RUN/client/state
    cache directory = $RUN/client/cache
    private dir = $RUN/client/private
    pid directory = $RUN/client/lock
    ncalrpc dir = $RUN/client/lock
    log level = 0
    load printers = no
CONF
    for _ in $(seq 100); do
        ss -ltn | grep -q "$A98:445 " && ss -ltn | grep -q "$A97:445 " && break
        sleep 0.1
    done
    ss -ltn | grep -q "$A98:445 " && ss -ltn | grep -q "$A97:445 " || { echo "smbd did not come up" >&2; exit 1; }
}

# Independent clients, recorded after the probes (their streams are not cut
# into vectors; their verdicts go to crosscheck.txt).
crosscheck() {
    local a rc out=$RUN/crosscheck.txt
    : > "$out"
    for a in "$A98" "$A97"; do
        for m in NT1 SMB2; do
            echo "### smbclient //$a/IPC\$ -N -m $m --option='client min protocol=NT1' -c exit" >> "$out"
            rc=0
            smbclient -s "$RUN/client.conf" "//$a/IPC\$" -N -m "$m" --option='client min protocol=NT1' \
                -d 3 -c exit > "$RUN/smbclient-$a-$m.log" 2>&1 || rc=$?
            grep -E "protocol negotiation|Protocol negotiated|NT_STATUS|negotiated dialect|Connection to|session setup|Anonymous login|SMB1 disabled|failed" \
                "$RUN/smbclient-$a-$m.log" | grep -v "^lp_load" | head -8 >> "$out" || true
            echo "exit $rc" >> "$out"
        done
        echo "### impacket SMBConnection(preferredDialect=SMB_DIALECT) -> $a" >> "$out"
        python3 - "$a" >> "$out" 2>&1 <<'PY' || true
import sys
from impacket import smb
from impacket.smbconnection import SMBConnection
a = sys.argv[1]
try:
    c = SMBConnection(a, a, sess_port=445, preferredDialect=smb.SMB_DIALECT, timeout=5)
    print("negotiated dialect %r; server name %r, domain %r, os %r" % (
        c.getDialect(), c.getServerName(), c.getServerDomain(), c.getServerOS()))
except Exception as e:
    print("error: %s: %s" % (type(e).__name__, e))
try:
    c = SMBConnection(a, a, sess_port=445, timeout=5)
    print("default negotiate: dialect 0x%x; server name %r, domain %r, dns host %r, dns domain %r, os %r" % (
        c.getDialect(), c.getServerName(), c.getServerDomain(), c.getServerDNSHostName(),
        c.getServerDNSDomainName(), c.getServerOS()))
except Exception as e:
    print("error: %s: %s" % (type(e).__name__, e))
PY
    done
    cat "$out"
}

capture() {
    tshark -i lo -f "(host $A98 or host $A97) and tcp port 445" -w "$RUN/cap.pcapng" 2>"$RUN/tshark.err" &
    TSHARK_PID=$!
    for _ in $(seq 50); do grep -q Capturing "$RUN/tshark.err" && break; sleep 0.2; done
    python3 "$HERE/smb_probe.py" "$RUN/probes.json" "$A98" min2 "$A97" nt1 | tee "$RUN/probes.txt"
    crosscheck
    sleep 1
    kill -INT "$TSHARK_PID"; wait "$TSHARK_PID" || true
    TSHARK_PID=
    {
        echo "### every NEGOTIATE response in cap.pcapng (tshark): frame|tcp.stream|server|client port|SMB1 dialect index|SMB2 dialect|SMB1 capabilities"
        echo "### streams 0-11: smb_probe.py; then per server (.98, .97): smbclient -m NT1, smbclient -m SMB2,"
        echo "### impacket preferredDialect=SMB_DIALECT, impacket default"
        tshark -r "$RUN/cap.pcapng" -Y "(smb.cmd==0x72 && smb.flags.response==1) || (smb2.cmd==0 && smb2.flags.response==1)" \
            -T fields -E separator='|' -e frame.number -e tcp.stream -e ip.src -e tcp.dstport \
            -e smb.dialect.index -e smb2.dialect -e smb.server_cap 2>/dev/null
    } >> "$RUN/crosscheck.txt"
}

case "${1:-all}" in
    up)   setup ;;
    down) teardown ;;
    all)
        trap teardown EXIT
        setup
        capture
        python3 "$HERE/extract.py" "$RUN/cap.pcapng" "$RUN/probes.json" "$HERE" | tee "$RUN/decoded.txt"
        cp "$RUN/decoded.txt" "$RUN/crosscheck.txt" "$RUN/probes.txt" "$HERE/"
        if [ "${KEEP_PCAP:-0}" = 1 ]; then
            cp "$RUN/cap.pcapng" "$HERE/cap.pcapng" && chmod 0644 "$HERE/cap.pcapng"
        fi
        echo "capture done: $RUN/cap.pcapng"
        ;;
esac
