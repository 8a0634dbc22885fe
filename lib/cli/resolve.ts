/**
 * Host names for `--connect`, as nc takes them: `/etc/hosts` first (as glibc's default `hosts: files dns`),
 * then DNS through the system's resolv.conf. IPv4 only: the stack speaks IPv4.
 *
 * @module
 */

import { parseIpv4 } from "../wire/ipv4_address.ts";

/** The first IPv4 address `/etc/hosts`-format `text` gives `name` (case-insensitive), or null. */
export function lookupHostsFile(text: string, name: string): string | null {
  const wanted = name.toLowerCase();
  for (const raw of text.split("\n")) {
    const fields = raw.replace(/#.*/, "").trim().split(/\s+/);
    if (fields.length < 2 || parseIpv4(fields[0]) === null) continue;
    if (fields.slice(1).some((alias) => alias.toLowerCase() === wanted)) return fields[0];
  }
  return null;
}

/** Whether `name` is a syntactically valid host name (RFC 1123 §2.1 labels). */
export function isHostName(name: string): boolean {
  return name.length <= 253 &&
    name.split(".").every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}

/**
 * Resolves `host` to a dotted IPv4 address: an address is returned as it is, a name is looked up in
 * `/etc/hosts` and then in DNS. Throws an Error saying why when there is no IPv4 address.
 */
export async function resolveIpv4(host: string, hostsPath = "/etc/hosts"): Promise<string> {
  if (parseIpv4(host) !== null) return host;
  let hosts = "";
  try {
    hosts = await Deno.readTextFile(hostsPath);
  } catch { /* no hosts file: DNS only */ }
  const fromFile = lookupHostsFile(hosts, host);
  if (fromFile !== null) return fromFile;
  try {
    const answers = await Deno.resolveDns(host, "A");
    if (answers.length > 0) return answers[0];
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "no such name"
      : (error instanceof Error ? error.message : String(error)).split("\n")[0];
    throw new Error(`cannot resolve '${host}': ${reason} (not in ${hostsPath}, and DNS did not answer)`);
  }
  throw new Error(`cannot resolve '${host}': it has no IPv4 address`);
}
