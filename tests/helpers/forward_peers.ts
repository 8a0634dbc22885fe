/**
 * The Linux-side programs of the forwarding tests, in Python (the kernel's sockets, as an application
 * would use them): a server for the server namespace (TCP echo that records its peers, UDP echo, HTTP
 * file server) and the clients the confined application namespace runs.
 *
 * @module
 */

import type { Netns } from "./netns.ts";

/**
 * `server.py DIR PORT`: TCP echo on PORT (one thread per connection; echoes as it reads, then half-closes
 * after the client did) printing `peer ADDR` for each connection; UDP echo on PORT; HTTP on PORT+1
 * serving DIR; on PORT+2, a reset (SO_LINGER 0) after the first byte read. Prints `listening` once all
 * are bound.
 */
export const PY_SERVER = `
import socket, sys, threading, functools, http.server, struct
directory, port = sys.argv[1], int(sys.argv[2])
def echo(conn):
    try:
        while True:
            b = conn.recv(65536)
            if not b: break
            conn.sendall(b)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        conn.close()
def tcp(s):
    while True:
        conn, peer = s.accept()
        print("peer", peer[0], flush=True)
        threading.Thread(target=echo, args=(conn,), daemon=True).start()
def resetter(r):
    while True:
        conn, _ = r.accept()
        conn.recv(1)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
def udp(u):
    while True:
        data, peer = u.recvfrom(65535)
        u.sendto(data, peer)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port)); s.listen(256)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", port))
r = socket.socket(); r.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
r.bind(("0.0.0.0", port + 2)); r.listen(16)
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass
h = http.server.ThreadingHTTPServer(("0.0.0.0", port + 1), functools.partial(Quiet, directory=directory))
threading.Thread(target=tcp, args=(s,), daemon=True).start()
threading.Thread(target=udp, args=(u,), daemon=True).start()
threading.Thread(target=resetter, args=(r,), daemon=True).start()
print("listening", flush=True)
h.serve_forever()
`;

/** A server started with {@link startServer}. */
export interface ServerProcess {
  /** Everything it printed so far. */
  output(): string;
  /** Kills it and waits for the exit. */
  stop(): Promise<void>;
}

/** Starts {@link PY_SERVER} in `ns` and waits for `listening`. */
export async function startServer(ns: Netns, directory: string, port: number): Promise<ServerProcess> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns.name, "python3", "-u", "-c", PY_SERVER, directory, String(port)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let text = "";
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) text += chunk;
  })();
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    await reading;
  };
  const deadline = Date.now() + 10_000;
  while (!text.includes("listening")) {
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the server did not start: ${text}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { output: () => text, stop };
}

/**
 * `client.py MODE HOST PORT ...`, one JSON line:
 * - `echo BYTES`: send BYTES (random) from one thread, read the echo in another, half-close after
 *   sending; reports whether the echo was byte-exact;
 * - `many N BYTES`: N connections at once, each sends BYTES and reads them back; counts the exact ones;
 * - `udp SIZES`: one datagram per size (comma list), each answered; reports the sizes echoed exactly
 *   and the address the replies came from;
 * - `connect TIMEOUT`: one connect; reports the error name (or "connected") and the seconds it took;
 * - `udp-then-connect TIMEOUT`: one UDP exchange, then at once one connect, as `connect`;
 * - `reset`: connect, send one byte, report how the read ended (`ConnectionResetError:104` on a reset).
 */
export const PY_CLIENT = `
import socket, sys, json, os, threading, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def echo_one(size):
    data = os.urandom(size)
    s = socket.create_connection((host, port), timeout=30)
    def send():
        s.sendall(data); s.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=send); t.start()
    got = bytearray()
    while True:
        b = s.recv(1 << 20)
        if not b: break
        got += b
    t.join(); s.close()
    return bytes(got) == data, len(got)
if mode == "echo":
    ok, n = echo_one(int(sys.argv[4]))
    print(json.dumps({"exact": ok, "received": n}))
elif mode == "many":
    n, size = int(sys.argv[4]), int(sys.argv[5])
    results = [None] * n
    def run(i):
        try: results[i] = echo_one(size)[0]
        except OSError as e: results[i] = repr(e)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads: t.start()
    for t in threads: t.join()
    print(json.dumps({"exact": sum(1 for r in results if r is True), "errors": [r for r in results if r is not True][:5]}))
elif mode == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    exact = []; sources = set()
    for size in [int(x) for x in sys.argv[4].split(",")]:
        data = os.urandom(size)
        s.sendto(data, (host, port))
        reply, peer = s.recvfrom(65535)
        sources.add("%s:%d" % peer)
        if reply == data: exact.append(size)
    print(json.dumps({"exact": exact, "sources": sorted(sources)}))
elif mode == "reset":
    s = socket.create_connection((host, port), timeout=10); s.sendall(b"x")
    try:
        result = "data" if s.recv(100) else "eof"
    except OSError as e:
        result = type(e).__name__ + ":" + str(e.errno)
    print(json.dumps({"result": result}))
elif mode == "connect" or mode == "udp-then-connect":
    if mode == "udp-then-connect":
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
        u.sendto(b"hello", (host, port)); u.recvfrom(100)
    t0 = time.monotonic()
    try:
        s = socket.create_connection((host, port), timeout=float(sys.argv[4])); s.close(); result = "connected"
    except OSError as e:
        result = type(e).__name__ + ":" + str(e.errno)
    print(json.dumps({"result": result, "seconds": time.monotonic() - t0}))
`;

/** Runs {@link PY_CLIENT} in `ns` and returns its JSON result. */
export async function client(
  ns: Netns,
  args: (string | number)[],
  timeoutMs = 60_000,
): Promise<Record<string, unknown>> {
  const out = await ns.exec(["python3", "-c", PY_CLIENT, ...args.map(String)], { timeoutMs });
  return JSON.parse(out.trim().split("\n").pop()!);
}
