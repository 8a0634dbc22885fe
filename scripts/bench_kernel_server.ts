/**
 * The fallback kernel-side reference server for `bench:stack` when no C compiler can build
 * bench_kernel_server.c: discard (9), chargen (19) and echo (7) on Deno's own sockets, i.e. the Linux
 * kernel's TCP plus Deno's per-call cost (which makes request/response and connections/s read low). Runs
 * inside a benchmark namespace until killed; prints `ready PID`, as the C server does.
 *
 * @module
 */

function serve(port: number, handler: (conn: Deno.TcpConn) => Promise<void>): void {
  const listener = Deno.listen({ hostname: "0.0.0.0", port });
  (async () => {
    for await (const conn of listener) {
      handler(conn).catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch { /* closed by its streams already */ }
      });
    }
  })();
}

serve(9, async (conn) => {
  const buf = new Uint8Array(1 << 20);
  while ((await conn.read(buf)) !== null) { /* discard */ }
});
serve(19, async (conn) => {
  const buf = new Uint8Array(1 << 20).fill(120);
  while (true) await conn.write(buf);
});
serve(7, async (conn) => {
  conn.setNoDelay(true);
  await conn.readable.pipeTo(conn.writable, { preventClose: false });
});
console.log(`ready ${Deno.pid}`);
