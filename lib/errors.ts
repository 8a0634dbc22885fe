/**
 * Errors the library throws that applications may catch and act on. The command line turns them into one
 * line on stderr and an exit code, never a stack trace.
 *
 * @module
 */

/** A failure at run time the user can act on (no privileges, device missing): exit code 1 in the CLI. */
export class RuntimeError extends Error {
  /** Creates a runtime error; `message` names the cause and, where there is one, the remedy. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RuntimeError";
  }
}
