/**
 * The services under the tools people use with them, in a namespace with the stack on TUN: ncat typing
 * HTTP by hand, curl, h2load (HTTP/2 prior knowledge), ab with and without keep-alive, wrk, and ncat on
 * chargen, echo and discard.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { type Netns, withNetns } from "../helpers/netns.ts";
import { startStack } from "../helpers/stack_process.ts";
import { STATIC_PAGE } from "../../lib/services/status_site.ts";

const STATIC_LENGTH = new TextEncoder().encode(STATIC_PAGE).length;

/** Runs a shell pipeline inside `ns` (bounded by `timeoutMs`). */
function sh(ns: Netns, script: string, timeoutMs = 30_000) {
  return ns.run(["sh", "-c", script], { timeoutMs });
}

const PY_SLOW_REQUEST = `
import socket, time
s = socket.create_connection(("10.0.0.2", 80), timeout=10)
for c in b"GET /static.html HTTP/1.1\\nHost: 10.0.0.2\\nConnection: close\\n\\n":
    s.send(bytes([c]))
    time.sleep(0.02)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.split(b"\\r\\n")[0].decode())
`;

privilegedTest("http: nc, curl and h2load get the answers RFC 9110/9112 owe them", async () => {
  await withNetns("ns-http", async (ns) => {
    const stack = await startStack(ns, ["--services", "http"]);
    try {
      // Typed by hand: bare LF line ends, and the client keeps its side open (answered at once, no wait).
      const nc = await sh(ns, "(printf 'GET /nope HTTP/1.0\\n\\n'; sleep 3) | timeout 10 ncat 10.0.0.2 80");
      assert.match(nc.stdout, /^HTTP\/1\.1 404 Not Found\r\n/, nc.stderr);
      // Date on every response (RFC 9110 §6.6.1), within a minute of our clock.
      const date = /\r\nDate: ([^\r]+)\r\n/.exec(nc.stdout);
      assert.ok(date, nc.stdout);
      assert.ok(Math.abs(Date.parse(date[1]) - Date.now()) < 60_000, date[1]);
      // Two Host lines (RFC 9112 §3.2).
      const hosts = await sh(
        ns,
        "printf 'GET / HTTP/1.1\\r\\nHost: a\\r\\nHost: b\\r\\n\\r\\n' | timeout 10 ncat 10.0.0.2 80",
      );
      assert.match(hosts.stdout, /^HTTP\/1\.1 400 /);
      const code = async (args: string) =>
        (await sh(ns, `timeout 10 curl -s -o /dev/null -w '%{http_code}' ${args}`)).stdout;
      assert.equal(await code(`http://10.0.0.2/${"a".repeat(10_000)}`), "414");
      assert.equal(await code("-X CONNECT http://10.0.0.2/"), "501");
      assert.equal(await code("-X POST -d x http://10.0.0.2/"), "405");
      assert.equal(await code("--http1.0 http://10.0.0.2/static.html"), "200");
      // curl asks before sending a body (Expect: 100-continue) and gets the interim answer.
      const expect = await sh(
        ns,
        "head -c 4000 /dev/zero | timeout 10 curl -sv -X GET --data-binary @- -H 'Expect: 100-continue' " +
          "http://10.0.0.2/static.html -o /dev/null",
      );
      assert.match(expect.stderr, /< HTTP\/1\.1 100 Continue/);
      assert.match(expect.stderr, /< HTTP\/1\.1 200 OK/);
      // HTTP/2 with prior knowledge: a GOAWAY (HTTP_1_1_REQUIRED) ends it at once, never a hang.
      const h2 = await ns.run(["timeout", "10", "h2load", "-n", "1", "-c", "1", "http://10.0.0.2/"]);
      assert.notEqual(h2.code, 124, "h2load hung");
      assert.match(h2.stdout, /requests: 1 total, 1 started, 1 done, 0 succeeded, 1 failed/);
      const curlH2 = await sh(ns, "timeout 10 curl -s --http2-prior-knowledge http://10.0.0.2/static.html");
      assert.notEqual(curlH2.code, 124, "curl hung");
      // A request typed slowly, one byte every 20 ms, is still served.
      const slow = await ns.run(["python3", "-c", PY_SLOW_REQUEST], { timeoutMs: 20_000 });
      assert.equal(slow.stdout.trim(), "HTTP/1.1 200 OK", slow.stderr);
      const stats = JSON.parse((await ns.exec(["curl", "-s", "http://10.0.0.2/stats"])).trim());
      assert.equal(stats.services.http.http2Refused >= 1, true, JSON.stringify(stats.services));
    } finally {
      assert.equal(await stack.stop(), 0, stack.stderr);
    }
  });
});

privilegedTest(
  "http: ab (with and without -k) and wrk load /static.html and /bytes/N without failures",
  async () => {
    await withNetns("ns-load", async (ns) => {
      const stack = await startStack(ns, ["--services", "http"]);
      try {
        for (const keepAlive of [[], ["-k"]]) {
          const ab = await ns.run(
            ["ab", ...keepAlive, "-n", "2000", "-c", "50", "http://10.0.0.2/static.html"],
            { timeoutMs: 120_000 },
          );
          assert.equal(ab.code, 0, ab.stderr);
          assert.match(ab.stdout, /Complete requests:\s+2000\n/);
          assert.match(ab.stdout, /Failed requests:\s+0\n/, ab.stdout);
          assert.match(ab.stdout, new RegExp(`Document Length:\\s+${STATIC_LENGTH} bytes`));
          assert.doesNotMatch(ab.stdout, /Non-2xx responses/);
          if (keepAlive.length > 0) assert.match(ab.stdout, /Keep-Alive requests:\s+2000\n/);
        }
        const abBytes = await ns.run(["ab", "-k", "-n", "200", "-c", "10", "http://10.0.0.2/bytes/100000"], {
          timeoutMs: 60_000,
        });
        assert.match(abBytes.stdout, /Document Length:\s+100000 bytes/);
        assert.match(abBytes.stdout, /Failed requests:\s+0\n/, abBytes.stdout);
        // Short runs: the suite runs in parallel on small machines, and this is a check, not a benchmark.
        for (const path of ["/static.html", "/bytes/100000"]) {
          const wrk = await ns.run(["wrk", "-t", "1", "-c", "10", "-d", "1", `http://10.0.0.2${path}`], {
            timeoutMs: 30_000,
          });
          assert.equal(wrk.code, 0, wrk.stderr);
          assert.match(wrk.stdout, /\d+ requests in /);
          assert.doesNotMatch(wrk.stdout, /Socket errors|Non-2xx/, wrk.stdout);
        }
      } finally {
        assert.equal(await stack.stop(), 0, stack.stderr);
      }
    });
  },
);

privilegedTest("chargen, echo and discard behave per RFC 864, 862, 863 under ncat", async () => {
  await withNetns("ns-small", async (ns) => {
    const stack = await startStack(ns, ["--services", "echo,discard,chargen"]);
    try {
      // chargen: the caller's half-close (stdin at its end) does not stop it; 10 MB arrive.
      const chargen = await sh(ns, "timeout 30 ncat 10.0.0.2 19 </dev/null | head -c 10000000 | wc -c");
      assert.equal(chargen.stdout.trim(), "10000000", chargen.stderr);
      // echo: what was sent comes back after the half-close, then the service closes (ncat exits 0).
      const echo = await sh(
        ns,
        "head -c 300000 /dev/urandom > /tmp/ns-small-$$ && timeout 20 ncat 10.0.0.2 7 </tmp/ns-small-$$ | " +
          "cmp - /tmp/ns-small-$$; s=$?; rm -f /tmp/ns-small-$$; exit $s",
      );
      assert.equal(echo.code, 0, echo.stdout + echo.stderr);
      // discard: nothing comes back, and the service closes after the caller does.
      const discard = await sh(ns, "head -c 300000 /dev/zero | timeout 20 ncat 10.0.0.2 9 | wc -c");
      assert.equal(discard.stdout.trim(), "0");
      assert.equal(discard.code, 0);
    } finally {
      assert.equal(await stack.stop(), 0, stack.stderr);
    }
  });
});
