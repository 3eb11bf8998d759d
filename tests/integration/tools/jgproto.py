#!/usr/bin/env python3
"""jgproto.py - a raw client of jgschedd's socket protocol (docs/protocol.md)
for the integration tests that misbehave on purpose.

The CLI always speaks the protocol correctly; these scenarios do not: a line
that is not JSON, a request cut off by a close, a line over the 1 MiB limit, a
connection that never says anything, a client killed mid-request, and a client
that watches a group and pipelines requests but never reads a reply.  Each
scenario checks what the daemon must answer (if anything), prints "ok: ..." on
success and exits 0, or prints "FAIL: ..." and exits 1.  Whether the daemon
keeps serving everybody else is checked by the calling test, through the CLI.

usage: jgproto.py SOCKET SCENARIO [ARGS...]
  ping                      one ping; prints the round-trip time in seconds
  garbage                   a non-JSON line -> an error reply, the connection stays usable
  truncated                 half a JSON object, then close (no reply expected)
  oversize                  a line over 1 MiB -> an error reply, then the daemon closes
  idle SECONDS              connect, say nothing for SECONDS (prints "connected" first)
  half                      half a request, then SIGKILL ourselves (no close, no reply)
  submit FILE [TIMEOUT]     a submit request carrying FILE's bytes as the YAML, as the
                            CLI would but without its checks; prints the reply as one
                            JSON line ("reply: {...}") and the seconds it took
  flood ID SECONDS          watch group ID, then pipeline requests for ~24 MiB of
                            replies and never read; hold the connection SECONDS
  request JSON              one request as given (a crafted one), then prints the
                            reply line as it came
  submit_many N FILE        submit the YAML FILE N times, pipelined in batches,
                            for tests that need a big store quickly (not a misuse);
                            every submit must be answered ok
  watch ID [N]              watch group ID; prints "snapshot: STATE SPEC_NAME JOBS" for
                            the reply and each push (JOBS: the nodes' job names, comma
                            separated) until a terminal one, or closes after N snapshots
"""
import json
import os
import signal
import socket
import sys
import time

MAX_MESSAGE = 1 << 20


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def connect(path, timeout=10.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except OSError as e:
        fail("cannot connect to %s: %s" % (path, e))
    return s


class Reader:
    """Reads newline-terminated replies from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def line(self, timeout=10.0):
        """The next reply line (bytes, without the newline); None on EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply within %.1fs" % timeout)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return None
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def reply(self, what, timeout=10.0):
        """The next reply as a dict; fails if there is none or it is not JSON."""
        try:
            line = self.line(timeout)
        except TimeoutError as e:
            fail("%s: %s" % (what, e))
        if line is None:
            fail("%s: the daemon closed the connection without replying" % what)
        try:
            msg = json.loads(line)
        except ValueError:
            fail("%s: reply is not JSON: %r" % (what, line[:200]))
        if not isinstance(msg, dict) or "ok" not in msg:
            fail("%s: reply has no 'ok': %r" % (what, line[:200]))
        return msg


def send(sock, data):
    sock.sendall(data if isinstance(data, bytes) else data.encode())


def ping(path):
    s = connect(path)
    r = Reader(s)
    t0 = time.monotonic()
    send(s, '{"op":"ping"}\n')
    msg = r.reply("ping")
    dt = time.monotonic() - t0
    if msg.get("ok") is not True:
        fail("ping answered %r" % msg)
    s.close()
    print("%.3f" % dt, flush=True)


def garbage(path):
    s = connect(path)
    r = Reader(s)
    send(s, "this is not json }{\n")
    msg = r.reply("garbage line")
    if msg.get("ok") is not False or not isinstance(msg.get("error"), str) or not msg["error"]:
        fail("a garbage line was answered %r, expected ok:false with an error" % msg)
    # The connection carries any number of request/response pairs: a bad
    # line is answered, it does not end the conversation.
    send(s, '{"op":"ping"}\n')
    msg2 = r.reply("ping after a garbage line")
    if msg2.get("ok") is not True:
        fail("ping after a garbage line answered %r" % msg2)
    s.close()
    print("ok: garbage line -> error %r; the same connection then answers ping" % msg["error"],
          flush=True)


def truncated(path):
    s = connect(path)
    send(s, '{"op":"submit","file":"x.yaml","yaml":"name: cut')
    s.shutdown(socket.SHUT_WR)
    r = Reader(s)
    try:
        line = r.line(5.0)
    except TimeoutError:
        fail("the daemon neither replied nor closed within 5 s after a truncated request")
    s.close()
    # Either nothing (EOF) or an error; never a success.
    if line is not None:
        try:
            msg = json.loads(line)
        except ValueError:
            fail("reply to a truncated request is not JSON: %r" % line[:200])
        if msg.get("ok") is not False:
            fail("a truncated request was answered %r" % msg)
    print("ok: truncated request then close -> %s" % ("EOF" if line is None else "error reply"),
          flush=True)


def oversize(path):
    s = connect(path)
    r = Reader(s)
    # A syntactically plausible request, just too long: 1 MiB + 64 KiB.
    head = b'{"op":"submit","file":"big.yaml","yaml":"'
    body = head + b"x" * (MAX_MESSAGE + 65536) + b'"}\n'
    sent = 0
    try:
        while sent < len(body):
            sent += s.send(body[sent:sent + 65536])
    except (BrokenPipeError, ConnectionResetError):
        pass        # the daemon may close as soon as it has seen too much
    except socket.timeout:
        fail("the daemon stopped reading an oversize message after %d bytes" % sent)
    line = None
    try:
        line = r.line(10.0)
    except TimeoutError:
        fail("no reply within 10 s to a message over 1 MiB (%d bytes sent)" % sent)
    if line is None:
        fail("the daemon closed the connection without an error reply to a message over 1 MiB")
    try:
        msg = json.loads(line)
    except ValueError:
        fail("reply to an oversize message is not JSON: %r" % line[:200])
    if msg.get("ok") is not False or not msg.get("error"):
        fail("a message over 1 MiB was answered %r, expected ok:false with an error" % msg)
    try:
        rest = r.line(5.0)
    except TimeoutError:
        fail("the daemon did not close the connection within 5 s after an oversize message")
    if rest is not None:
        fail("after the oversize error the daemon sent more: %r" % rest[:200])
    s.close()
    print("ok: message over 1 MiB -> error %r, then the daemon closed" % msg["error"], flush=True)


def idle(path, seconds):
    s = connect(path)
    print("connected", flush=True)
    time.sleep(seconds)
    s.close()


def half(path):
    s = connect(path)
    send(s, '{"op":"queue","all":tr')
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def flood(path, gid, seconds):
    # How big one reply is, asked on a separate (well-behaved) connection.
    probe = connect(path)
    req_show = (json.dumps({"op": "show", "id": gid}) + "\n").encode()
    send(probe, req_show)
    r = Reader(probe)
    first = r.line(10.0)
    probe.close()
    if first is None:
        fail("show %d: the daemon closed the connection" % gid)
    size = len(first) + 1
    # Pipeline enough requests that their replies exceed every buffer (ours,
    # the kernel's and the daemon's 16 MiB) by far, and never read one.  A
    # daemon that blocks on us stops serving everybody else; one that gives
    # up on us closes the connection.
    count = (24 << 20) // size + 1
    s = connect(path)
    s.settimeout(5.0)
    send(s, json.dumps({"op": "watch", "id": gid}) + "\n")
    sent = 0
    closed = False
    try:
        while sent < count:
            n = min(256, count - sent)
            s.sendall(req_show * n)
            sent += n
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    except socket.timeout:
        pass            # the daemon stopped reading us: fine, as long as it serves others
    print("flooding: %d show requests (replies of %d bytes) sent unread%s" %
          (sent, size, ", then the daemon closed" if closed else ""), flush=True)
    time.sleep(seconds)
    s.close()
    print("ok: watch plus %d unread requests held for %gs" % (sent, seconds), flush=True)


def request(path, text):
    s = connect(path)
    send(s, text.rstrip("\n") + "\n")
    line = Reader(s).line(30.0)
    s.close()
    if line is None:
        fail("the daemon closed the connection without a reply")
    print(line.decode("utf-8", "replace"), flush=True)


def watch(path, group_id, limit):
    s = connect(path)
    r = Reader(s)
    send(s, json.dumps({"op": "watch", "id": group_id}) + "\n")
    seen = 0
    while limit == 0 or seen < limit:
        msg = r.reply("watch snapshot %d" % (seen + 1), 60.0)
        g = msg.get("group")
        if msg.get("ok") is not True or not isinstance(g, dict):
            fail("watch answered %r" % msg)
        spec = g.get("spec") or {}
        jobs = ",".join(n.get("job", "?") for n in g.get("nodes", []))
        print("snapshot: %s %s %s" % (g.get("state"), spec.get("name", "-"), jobs or "-"),
              flush=True)
        seen += 1
        state = str(g.get("state"))
        if state in ("SUCCEEDED", "CANCELLED") or state.startswith("FAILED"):
            break
    s.close()


def submit_many(path, count, yaml_path):
    with open(yaml_path) as f:
        text = f.read()
    request = (json.dumps({"op": "submit", "file": yaml_path, "yaml": text}) + "\n").encode()
    s = connect(path)
    r = Reader(s)
    done = 0
    while done < count:
        batch = min(200, count - done)
        send(s, request * batch)
        for _ in range(batch):
            msg = r.reply("submit %d" % (done + 1), timeout=60.0)
            if msg.get("ok") is not True:
                fail("submit %d refused: %r" % (done + 1, msg))
            done += 1
    s.close()
    print("ok: %d groups submitted" % done, flush=True)


def submit(path, yaml_path, timeout):
    """Submits the raw bytes of yaml_path, bypassing every CLI check."""
    with open(yaml_path, "rb") as f:
        text = f.read().decode("utf-8")
    req = json.dumps({"op": "submit", "file": os.path.abspath(yaml_path), "yaml": text},
                     separators=(",", ":")).encode() + b"\n"
    s = connect(path, timeout)
    r = Reader(s)
    t0 = time.monotonic()
    try:
        send(s, req)
    except (BrokenPipeError, ConnectionResetError):
        pass
    msg = r.reply("submit of %s (%d bytes)" % (yaml_path, len(req)), timeout)
    took = time.monotonic() - t0
    s.close()
    print("reply: " + json.dumps(msg, separators=(",", ":")), flush=True)
    print("seconds: %.3f" % took, flush=True)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, scenario, args = argv[1], argv[2], argv[3:]
    if scenario == "ping":
        ping(path)
    elif scenario == "garbage":
        garbage(path)
    elif scenario == "truncated":
        truncated(path)
    elif scenario == "oversize":
        oversize(path)
    elif scenario == "idle":
        idle(path, float(args[0]))
    elif scenario == "half":
        half(path)
    elif scenario == "submit":
        submit(path, args[0], float(args[1]) if len(args) > 1 else 60.0)
    elif scenario == "flood":
        flood(path, int(args[0]), float(args[1]))
    elif scenario == "request":
        request(path, args[0])
    elif scenario == "watch":
        watch(path, int(args[0]), int(args[1]) if len(args) > 1 else 0)
    elif scenario == "submit_many":
        submit_many(path, int(args[0]), args[1])
    else:
        print("unknown scenario %r" % scenario, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
