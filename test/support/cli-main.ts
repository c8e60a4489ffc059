// Runs the CLI's main() in this process (faster than the launcher in a child,
// and the test can use the store it wrote meanwhile) and collects what it printed.
import { main } from '../../src/cli/main.ts';

export async function runMain(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { write: (t) => void (out += t), error: (t) => void (err += t), color: false }, env);
  return { code, out, err };
}
