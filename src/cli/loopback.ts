// `grantpool accounts add` without a running gateway: listen on the redirect
// URI's own address for the one callback of this consent.
import { createServer } from 'node:http';
import { completeConsent, type AddAccountDeps, type AddAccountResult } from '../oauth/add-account.ts';
import { escapeHtml, sendHtml } from '../http/http-util.ts';
import { CliError } from './context.ts';

export async function waitForCallback(deps: AddAccountDeps, redirectUri: string, timeoutMs: number): Promise<AddAccountResult> {
  const target = new URL(redirectUri);
  const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
  if (target.protocol !== 'http:') {
    throw new CliError(`the redirect URI ${redirectUri} is not a local http address; start the gateway there, or use --paste`);
  }
  return new Promise((resolve, reject) => {
    const server = createServer(async (req, res) => {
      const url = new URL(req.url ?? '/', redirectUri);
      if (url.pathname !== target.pathname) {
        sendHtml(res, 404, '<!doctype html><title>Not found</title><p>Not found.</p>');
        return;
      }
      try {
        const result = await completeConsent(deps, url);
        sendHtml(res, 200, page('Account added', `${result.account.email} is connected to Grantpool. You can close this tab.`));
        finish(() => resolve(result));
      } catch (e) {
        sendHtml(res, 400, page('Could not add the account', (e as Error).message));
        finish(() => reject(new CliError((e as Error).message)));
      }
    });
    const timer = setTimeout(() => finish(() => reject(new CliError('no answer from Google within the time limit; run the command again'))), timeoutMs);
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      server.close();
      server.closeAllConnections();
      settle();
    };
    server.once('error', (e: NodeJS.ErrnoException) =>
      finish(() => reject(new CliError(e.code === 'EADDRINUSE' ? `port ${port} is in use; is a gateway running there? Otherwise use --paste` : e.message))),
    );
    server.listen(port, target.hostname === 'localhost' ? '127.0.0.1' : target.hostname.replace(/^\[|\]$/g, ''));
  });
}

function page(title: string, text: string): string {
  return `<!doctype html><meta charset="utf-8"><title>${escapeHtml(title)}</title><main style="font-family:system-ui;max-width:40rem;margin:3rem auto"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p></main>`;
}
