#!/usr/bin/env python3
"""jgattack.py - a hostile local user's attacks on jgschedd's socket, for
tests/integration/security_daemon.sh.  Each is bounded in connections, bytes
and time, and speaks only to the given Unix socket.

Every scenario prints progress lines, then one final line "result: {JSON}"
with what it observed; it exits 0 unless it could not run at all (the calling
test judges the result).

usage: jgattack.py SOCKET SCENARIO [ARGS...]
  pipeline COUNT            one connection pipelines COUNT pings as fast as the
                            socket takes them and reads the replies; prints
                            "started" once the first reply is in
  conns COUNT STOPFILE MAX_S
                            opens COUNT connections (giving up on those that
                            find no room in 10 s) and sends a ping on each:
                            counts those served, refused (an error line, then
                            EOF) and stalled (no reply within 5 s); prints
                            "holding", then keeps them open until STOPFILE
                            exists or MAX_S seconds have passed
  partial COUNT BYTES MAX_S opens COUNT connections, sends BYTES bytes without a
                            newline on each, then waits up to MAX_S seconds for
                            the daemon to close every one; counts the error
                            replies by text
  steady STOPFILE MAX_S     one connection opened at once; a ping every 0.2 s
                            until STOPFILE exists or MAX_S seconds have passed;
                            reports the slowest reply
"""
import json
import os
import select
import socket
import struct
import sys
import time

PING = b'{"op":"ping"}\n'
READ_SIZE = int(os.environ.get("JGATTACK_READ", "512"))


def result(obj):
    print("result: " + json.dumps(obj, sort_keys=True), flush=True)


def connect(path, timeout=2.0):
    """A connected socket, or the exception that prevented it.  While the
    daemon's backlog is full, connect waits up to `timeout` for room (a
    socket with a Python timeout would fail at once with EAGAIN: the kernel
    waits on a Unix socket's SO_SNDTIMEO, and only when it is blocking)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sec = int(timeout)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                 struct.pack("ll", sec, int((timeout - sec) * 1e6)))
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        return e
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 0, 0))
    s.settimeout(timeout)
    return s


def pipeline(path, count):
    s = connect(path, 10.0)
    if isinstance(s, Exception):
        print("cannot connect: %s" % s, file=sys.stderr)
        sys.exit(2)
    # The sender is a process of its own, so that it keeps the daemon's socket
    # full however long the reader (this process) takes over the replies.
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            s.settimeout(120.0)
            batch = PING * 1000
            for _ in range(count // 1000):
                s.sendall(batch)
            s.sendall(PING * (count % 1000))
        except OSError:
            code = 1
        os._exit(code)
    s.settimeout(60.0)
    buf = b""
    answered = 0
    bad = 0
    first = None
    errors = []
    while answered < count:
        try:
            data = s.recv(READ_SIZE)
        except OSError as e:
            errors.append("recv: %s" % e)
            break
        if not data:
            break
        buf += data
        n = buf.count(b"\n")
        if n:
            lines = buf.split(b"\n")
            buf = lines.pop()
            answered += n
            bad += sum(1 for line in lines if b'"ok":true' not in line)
        if first is None and answered:
            first = round(time.monotonic() - t0, 3)
            print("started", flush=True)
    took = time.monotonic() - t0
    _, status = os.waitpid(pid, 0)
    if status != 0:
        errors.append("the sender failed")
    s.close()
    result({"count": count, "answered": answered, "not_ok": bad,
            "seconds": round(took, 3), "first_reply_s": first, "errors": errors[:3]})


def read_reply(s, deadline):
    """('reply', line) | ('eof', None) | ('timeout', None)."""
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", None
        r, _, _ = select.select([s], [], [], left)
        if not r:
            return "timeout", None
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            return "eof", None
        buf += data
    return "reply", buf.split(b"\n", 1)[0]


def conns(path, count, stopfile, max_s):
    socks, connect_failed = [], []
    give_up = time.monotonic() + 10.0       # a full backlog makes each connect wait
    for _ in range(count):
        left = give_up - time.monotonic()
        if left < 0.01:
            connect_failed.append("no room in the backlog within 10 s")
            continue
        s = connect(path, min(2.0, left))
        if isinstance(s, Exception):
            connect_failed.append(str(s))
            continue
        socks.append(s)
    for s in socks:
        try:
            s.send(PING)
        except OSError:
            pass
    served = refused = stalled = other = 0
    refusals = {}
    deadline = time.monotonic() + 5.0
    for s in socks:
        kind, line = read_reply(s, deadline)
        if kind == "timeout":
            stalled += 1
            continue
        if kind == "eof":
            other += 1
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            other += 1
            continue
        if msg.get("ok") is True:
            served += 1
        else:
            refused += 1
            text = str(msg.get("error"))
            refusals[text] = refusals.get(text, 0) + 1
    print("holding", flush=True)
    end = time.monotonic() + max_s
    while time.monotonic() < end and not os.path.exists(stopfile):
        time.sleep(0.1)
    for s in socks:
        s.close()
    result({"count": count, "served": served, "refused": refused, "stalled": stalled,
            "eof_or_garbage": other, "connect_failed": len(connect_failed),
            "connect_errors": sorted(set(connect_failed))[:3], "refusals": refusals})


def partial(path, count, nbytes, max_s):
    chunk = b"x" * 65536
    socks, connect_failed, send_failed = [], 0, 0
    t0 = time.monotonic()
    for _ in range(count):
        s = connect(path, 2.0)
        if isinstance(s, Exception):
            connect_failed += 1
            continue
        s.settimeout(2.0)
        left = nbytes
        try:
            while left > 0:
                n = s.send(chunk[:min(left, len(chunk))])
                left -= n
        except OSError:
            send_failed += 1        # closed or stopped reading: judged below
        socks.append(s)
    print("sent", flush=True)
    replies = {}
    open_socks = list(socks)
    bufs = {s: b"" for s in socks}
    end = time.monotonic() + max_s
    while open_socks and time.monotonic() < end:
        r, _, _ = select.select(open_socks, [], [], min(0.5, max(0.0, end - time.monotonic())))
        for s in r:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data:
                bufs[s] += data
                continue
            open_socks.remove(s)
            for line in bufs[s].split(b"\n"):
                if not line:
                    continue
                try:
                    text = str(json.loads(line).get("error"))
                except ValueError:
                    text = "(not JSON)"
                replies[text] = replies.get(text, 0) + 1
    took = time.monotonic() - t0
    still_open = len(open_socks)
    for s in socks:
        s.close()
    result({"count": count, "bytes": nbytes, "connect_failed": connect_failed,
            "send_stopped": send_failed, "closed_by_daemon": len(socks) - still_open,
            "still_open": still_open, "seconds": round(took, 3), "replies": replies})


def steady(path, stopfile, max_s):
    s = connect(path, 5.0)
    if isinstance(s, Exception):
        print("cannot connect: %s" % s, file=sys.stderr)
        sys.exit(2)
    print("connected", flush=True)
    worst, n, failed = 0.0, 0, []
    end = time.monotonic() + max_s
    while time.monotonic() < end and not os.path.exists(stopfile):
        t0 = time.monotonic()
        try:
            s.sendall(PING)
            kind, line = read_reply(s, t0 + 30.0)
        except OSError as e:
            kind, line = "error %s" % e, None
        dt = time.monotonic() - t0
        worst = max(worst, dt)
        n += 1
        if kind != "reply" or b'"ok":true' not in line:
            failed.append(kind)
            break
        time.sleep(0.2)
    s.close()
    result({"pings": n, "slowest_s": round(worst, 3), "failed": failed})


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, scenario, args = argv[1], argv[2], argv[3:]
    if scenario == "pipeline":
        pipeline(path, int(args[0]))
    elif scenario == "conns":
        conns(path, int(args[0]), args[1], float(args[2]))
    elif scenario == "partial":
        partial(path, int(args[0]), int(args[1]), float(args[2]))
    elif scenario == "steady":
        steady(path, args[0], float(args[1]))
    else:
        print("unknown scenario %r" % scenario, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
