/**
 * The environment every payload starts from: the configured one
 * (`payloadBaseEnv`), and what the bootstrap steps added once they ran
 * (the software they installed). Each payload reads it when it starts.
 */

/** The payloads' base environment; replaced, never changed in place. */
export class PayloadBaseEnv {
  private env: Readonly<Record<string, string>>;

  constructor(configured: Readonly<Record<string, string>>) {
    this.env = Object.freeze({ ...configured });
  }

  /** The base environment now. */
  get(): Readonly<Record<string, string>> {
    return this.env;
  }

  /** Add `more` (the bootstrap's variables) over what is there. */
  add(more: Readonly<Record<string, string>>): void {
    this.env = Object.freeze({ ...this.env, ...more });
  }
}
