/**
 * Runs `netstack trace` the way main.ts does (same error handling and exit codes), for tests that start
 * the tracer inside a network namespace with `ip netns exec`.
 *
 * @module
 */

import { runTrace } from "../../lib/cli/trace_cmd.ts";
import { RuntimeError, UsageError } from "../../lib/cli/errors.ts";

let code: number;
try {
  code = await runTrace(Deno.args);
} catch (error) {
  if (error instanceof UsageError) {
    console.error(`netstack ${error.command}: ${error.message}\nTry 'netstack ${error.command} --help'.`);
    code = 2;
  } else if (error instanceof RuntimeError) {
    console.error(`netstack: ${error.message}`);
    code = 1;
  } else {
    throw error;
  }
}
Deno.exit(code);
