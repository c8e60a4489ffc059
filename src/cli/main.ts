// The `grantpool` command line. Exit code 0 on success, non-zero with a
// one-line reason otherwise.
import { parseArgs } from 'node:util';
import { CliError, createCliContext } from './context.ts';
import { processOut, reportCliError, type Out } from './output.ts';
// Each command's module is loaded when that command runs: `grantpool serve`
// then holds only the gateway's code (not the PostgreSQL copy tools, RISC
// registration or the account commands: about 1 MB of heap; docs/performance-log.md).

const USAGE = `Usage: grantpool <command>

  serve                                   run the gateway (npm start)
  status                                  summary of the running gateway
  doctor                                  check the setup, one line per check with the fix
  accounts list [--json]                  accounts with their state and reason
  accounts add [--paste] [--login-hint E] connect a Google account (consent in a browser)
  accounts import --refresh-token -       add an account from a refresh token read from stdin (or typed at a prompt)
  accounts import --file F                add many (JSON array of {"email"?, "refresh_token"} or {"accounts": [...]})
  accounts enable <email or id>           put an account back into the proxy
  accounts disable <email or id>          take an account out of the proxy (reason "manual")
  accounts remove <email or id> [--no-revoke]  revoke at Google and delete
  accounts project <email or id> [--json] the account's Google Cloud projects, Gemini API and Vertex AI state in each
      --use P                             check project P and draw the account's quota from it
      --enable P | --enable-vertex P      enable the Gemini API (or Vertex AI) in P, wait for it, then use P
      --discover                          look for a project with the Gemini API enabled again
  migrate                                 create or migrate the PostgreSQL schema (GRANTPOOL_DATABASE_URL)
  store copy --from A --to B              copy every account between a data directory and a postgres:// URL
  risc register --service-account F [--url U]  have Google push security events (Cross-Account Protection) to <public url>/risc
  risc status [--service-account F] [--json]   the stream Google has, and the security events the gateway received
  encrypt                                 encrypt the plain tokens of the store with the configured key (docs/security.md)
  encrypt --rotate [--new-key K]          re-encrypt every token with the configured key, or with K (base64 or @file)
  decrypt                                 store every token unencrypted again

Environment: GRANTPOOL_DATA_DIR (default ~/.grantpool) and the other GRANTPOOL_* variables of the README.
`;

export async function main(argv: string[], out: Out = processOut, env: Record<string, string | undefined> = process.env): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: secretFromStdin(argv, '--refresh-token'),
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean' },
        paste: { type: 'boolean' },
        'login-hint': { type: 'string' },
        'refresh-token': { type: 'string' },
        file: { type: 'string' },
        'no-revoke': { type: 'boolean' },
        from: { type: 'string' },
        to: { type: 'string' },
        use: { type: 'string' },
        enable: { type: 'string' },
        'enable-vertex': { type: 'string' },
        discover: { type: 'boolean' },
        'service-account': { type: 'string' },
        url: { type: 'string' },
        rotate: { type: 'boolean' },
        'new-key': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    out.error(`grantpool: ${(e as Error).message}\n`);
    return 2;
  }
  const { values: o, positionals: [command, sub, ref, ...extra] } = args;
  if (o.help || !command || command === 'help') {
    out.write(USAGE);
    return command || o.help ? 0 : 2;
  }
  if (command === 'serve') return (await import('./serve.ts')).serve(out, env).catch((e: unknown) => reportCliError(out, e, 'cannot start: '));

  const ctx = createCliContext(env);
  try {
    if (command === 'status') return await (await import('./status.ts')).status(ctx, out);
    if (command === 'doctor') return await (await import('./doctor.ts')).doctor(ctx, out);
    if (command === 'migrate') return await (await import('./store.ts')).migrateCommand(ctx, out);
    if (command === 'store' && sub === 'copy') return await (await import('./store.ts')).storeCopy(ctx, out, { from: o.from, to: o.to });
    if (command === 'risc' && sub === 'register') return await (await import('./risc.ts')).riscRegister(ctx, out, { serviceAccount: o['service-account'], url: o.url });
    if (command === 'risc' && sub === 'status') return await (await import('./risc.ts')).riscStatus(ctx, out, { serviceAccount: o['service-account'], json: !!o.json });
    if ((command === 'encrypt' || command === 'decrypt') && !sub) {
      if (command === 'decrypt' && (o.rotate || o['new-key'] !== undefined)) throw new CliError('--rotate and --new-key go with `grantpool encrypt`');
      if (o['new-key'] !== undefined && !o.rotate) throw new CliError('--new-key goes with --rotate: `grantpool encrypt --rotate --new-key <base64 | @file>`');
      return await (await import('./encrypt.ts')).convertCommand(ctx, out, command === 'decrypt' ? 'decrypt' : o.rotate ? 'rotate' : 'encrypt', { newKey: o['new-key'] });
    }
    if (command === 'accounts') {
      const needRef = ['enable', 'disable', 'remove', 'project'].includes(sub ?? '');
      if (needRef && (!ref || extra.length)) throw new CliError(`usage: grantpool accounts ${sub} <email or id>`);
      const { addAccount, importAccounts, listAccounts, remove, setEnabled } = await import('./accounts.ts');
      switch (sub) {
        case 'list':
          return await listAccounts(ctx, out, { json: !!o.json });
        case 'add':
          return await addAccount(ctx, out, { paste: !!o.paste, pasteUrl: ref, loginHint: o['login-hint'] });
        case 'import':
          return await importAccounts(ctx, out, { refreshToken: o['refresh-token'], file: o.file });
        case 'enable':
        case 'disable':
          return await setEnabled(ctx, out, ref!, sub === 'enable');
        case 'remove':
          return await remove(ctx, out, ref!, { revoke: !o['no-revoke'] });
        case 'project':
          return await (await import('./projects.ts')).accountProject(ctx, out, ref!, { use: o.use, enable: o.enable, enableVertex: o['enable-vertex'], discover: !!o.discover, json: !!o.json });
      }
    }
    out.error(`grantpool: unknown command "${[command, sub].filter(Boolean).join(' ')}"\n\n${USAGE}`);
    return 2;
  } catch (e) {
    return reportCliError(out, e);
  } finally {
    await ctx.close();
  }
}

/** `--flag` with no value (last, or followed by another option) or an empty one means `--flag -`: read the secret from stdin. */
function secretFromStdin(argv: string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === `${flag}=`) {
      out.push(flag, '-');
    } else if (a === flag && (i + 1 >= argv.length || argv[i + 1]!.startsWith('--') || argv[i + 1] === '')) {
      out.push(flag, '-');
      if (argv[i + 1] === '') i++;
    } else {
      out.push(a);
    }
  }
  return out;
}
