/**
 * A tcpdump expression from the command line to a checked classic BPF program: libpcap compiles it
 * (lib/ffi/pcap_compile.ts) for the link type of where it will run, and {@link checkProgram} refuses
 * what netstack cannot run, so that a filter is never silently dropped.
 *
 * @module
 */

import { Dlt, FilterSyntaxError, pcapCompile } from "../ffi/pcap_compile.ts";
import { type CbpfInstruction, checkProgram, UnsupportedFilterError } from "./cbpf.ts";

export { Dlt, FilterSyntaxError, UnsupportedFilterError };

/** Snap length the expression is compiled with (the `ret #65535` of a match). */
export const EXPRESSION_SNAPLEN = 65535;

/** tcpdump's way of taking an expression from several arguments: the words joined with spaces. */
export function joinExpression(words: readonly string[]): string | undefined {
  const text = words.join(" ").trim();
  return text === "" ? undefined : text;
}

/**
 * Compiles `expression` for `linkType` (Dlt.EN10MB for Ethernet, Dlt.RAW for raw-IP devices) without
 * checking it (what `-d` prints). Throws FilterSyntaxError with libpcap's message.
 */
export function compileExpression(expression: string, linkType: number): CbpfInstruction[] {
  return pcapCompile(expression, linkType, EXPRESSION_SNAPLEN);
}

/**
 * Compiles and checks `expression`: FilterSyntaxError when libpcap refuses it, UnsupportedFilterError
 * naming the construct netstack cannot run (a loop from `protochain`, Linux extensions from `inbound`,
 * `ifindex`…).
 */
export function compileRunnableExpression(expression: string, linkType: number): CbpfInstruction[] {
  const program = compileExpression(expression, linkType);
  checkProgram(program);
  return program;
}
