/**
 * A Deno program using netstack as a library (only `lib/mod.ts`), run inside a test namespace: it opens a
 * stack on a TUN device, serves "upper-case echo" on TCP port 5555 through `stack.listen`, and after one
 * connection opens its own connection with `stack.connect` to the host side's port given as the first
 * argument, sends a greeting, prints what came back, and exits.
 *
 * @module
 */

import { openTunStack, parseIpv4Cidr } from "../../lib/mod.ts";

const hostPort = Number(Deno.args[0]);
const { stack, close } = openTunStack({
  iface: "tunlib0",
  address: parseIpv4Cidr("10.5.0.2/24")!,
  hostAddress: parseIpv4Cidr("10.5.0.1/24")!,
});
const listener = stack.listen({ port: 5555 });
console.log(JSON.stringify({ ready: true }));
const conn = await listener.accept();
await conn.readable
  .pipeThrough(new TextDecoderStream())
  .pipeThrough(
    new TransformStream<string, string>({ transform: (text, out) => out.enqueue(text.toUpperCase()) }),
  )
  .pipeThrough(new TextEncoderStream())
  .pipeTo(conn.writable);
listener.close();

const outgoing = await stack.connect({ hostname: "10.5.0.1", port: hostPort });
const writer = outgoing.writable.getWriter();
await writer.write(new TextEncoder().encode("hello from a library user"));
await writer.close();
const reply = await new Response(outgoing.readable).text();
console.log(JSON.stringify({ reply, local: outgoing.localAddr }));
await outgoing.finished();
await close();
Deno.exit(0);
