/**
 * Privileged tests (TUN, namespaces, XDP) run only with root or CAP_NET_ADMIN. Without them they are
 * ignored with a message, unless NETSTACK_PRIVILEGED_TESTS=1 (set by CI), where missing privileges fail.
 *
 * @module
 */

const CAP_NET_ADMIN = 12;

function hasNetAdmin(): boolean {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
    return match !== null && (BigInt(`0x${match[1]}`) & (1n << BigInt(CAP_NET_ADMIN))) !== 0n;
  } catch {
    return false;
  }
}

/** Whether privileged tests can run here. */
export const PRIVILEGED = hasNetAdmin();

/** Whether CI demands that privileged tests run. */
export const PRIVILEGED_REQUIRED = Deno.env.get("NETSTACK_PRIVILEGED_TESTS") === "1";

let warned = false;

/** Registers a test that needs CAP_NET_ADMIN (see the module comment for when it is ignored). */
export function privilegedTest(name: string, fn: (t: Deno.TestContext) => Promise<void> | void): void {
  if (PRIVILEGED) {
    Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
    return;
  }
  if (PRIVILEGED_REQUIRED) {
    Deno.test(name, () => {
      throw new Error(
        "NETSTACK_PRIVILEGED_TESTS=1 but this process lacks CAP_NET_ADMIN: run the tests as root",
      );
    });
    return;
  }
  if (!warned) {
    warned = true;
    console.warn("privileged tests ignored: they need root or CAP_NET_ADMIN (run with sudo)");
  }
  Deno.test({ name, ignore: true, fn });
}
