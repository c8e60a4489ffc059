// Setup view: exactly what to create in the Google Cloud console, and the
// client_secret.json upload.
import { api } from './api.js';
import { h, clear, replaceChildren, uid } from './dom.js';
import { card, copyField, codeBlock, errorBox, setBusy, toast, badge } from './ui.js';

/** Problems Google will have with this redirect URI (its documented rules), in plain words. */
export function redirectUriProblems(uri) {
  const out = [];
  let u;
  try {
    u = new URL(uri);
  } catch {
    return ['The redirect URI is not a valid URL; set GRANTPOOL_PUBLIC_URL to the address your browser uses for this gateway.'];
  }
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host.endsWith('.localhost') || host === '127.0.0.1' || host === '::1';
  if (u.protocol !== 'https:' && !loopback) {
    out.push(`Google accepts plain http:// redirect URIs only for localhost. Serve the gateway over https and set GRANTPOOL_PUBLIC_URL to that https:// address.`);
  }
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host) && !loopback) {
    out.push('Google does not accept a raw IP address in a redirect URI (except loopback). Use a host name.');
  }
  return out;
}

export function mountSetup(root, app) {
  const statusBox = h('div');
  const stepsBox = h('div');
  const uploadBox = h('div');
  const projectsBox = h('div');
  root.append(h('div', { class: 'container container-narrow' },
    h('div', { class: 'page-head' }, h('h1', null, 'Setup')),
    statusBox, stepsBox, uploadBox, projectsBox));

  function render() {
    const st = app.state.status ?? {};
    const oauth = st.oauth ?? {};
    const redirectUri = st.redirect_uri ?? '';
    const scopes = oauth.scopes ?? [];

    clear(statusBox);
    if (oauth.configured) {
      const clientIds = (oauth.clients ?? []).map((c) => c.client_id).filter(Boolean);
      statusBox.append(card('OAuth client',
        h('p', null, badge('Configured', oauth.problem ? 'warn' : 'ok'), ' ',
          clientIds.length ? h('code', null, clientIds.join(', ')) : null),
        h('dl', { class: 'kv' },
          h('dt', null, 'Client file'), h('dd', null, h('code', null, oauth.client_secret_file ?? '')),
          h('dt', null, 'Issuer'), h('dd', null, h('code', null, oauth.issuer ?? '')),
          h('dt', null, 'Redirect URI'), h('dd', null, h('code', null, redirectUri))),
        oauth.problem ? errorBox({ message: oauth.problem, fix: oauth.fix }) : null,
        h('p', null, h('a', { href: '#accounts', class: 'btn btn-primary' }, 'Go to accounts'))));
    } else {
      statusBox.append(h('div', { class: 'notice notice-info' },
        h('p', null, h('strong', null, 'Grantpool needs your own Google OAuth client. '),
          'It takes about five minutes in the Google Cloud console. Follow these steps, then upload the file Google gives you.')));
    }

    const problems = redirectUriProblems(redirectUri);
    const steps = [
      h('li', null,
        h('h3', null, 'Pick a Google Cloud project'),
        h('p', null, 'Open the ', link('https://console.cloud.google.com/projectselector2/apis/dashboard', 'Google Cloud console'),
          ' and select a project, or create a new one (any name).')),
      h('li', null,
        h('h3', null, 'Enable the APIs'),
        h('p', null, 'In APIs & Services → Library, enable the ',
          link('https://console.cloud.google.com/apis/library/generativelanguage.googleapis.com', 'Generative Language API'), ' (accounts without a project of their own draw on this one), the ',
          link('https://console.cloud.google.com/apis/library/cloudresourcemanager.googleapis.com', 'Cloud Resource Manager API'), ' and the ',
          link('https://console.cloud.google.com/apis/library/serviceusage.googleapis.com', 'Service Usage API'),
          '. Grantpool calls the last two to find each account\'s own project; ', h('code', null, 'grantpool doctor'), ' checks that they are on.')),
      h('li', null,
        h('h3', null, 'Configure the consent screen'),
        h('p', null, 'In ', link('https://console.cloud.google.com/auth/overview', 'Google Auth Platform'),
          ', fill in Branding (app name, support email). Under Audience choose External (or Internal for a Workspace organisation) and add the Google accounts you want to pool as test users.'),
        h('p', { class: 'hint' }, 'While the app\'s publishing status is "Testing", Google lets refresh tokens expire after 7 days and the accounts turn disabled with invalid_grant. Publish the app ("In production") to keep them working.')),
      h('li', null,
        h('h3', null, 'Add the scopes'),
        h('p', null, 'Under Data Access, add these scopes:'),
        scopes.length ? codeBlock(scopes.join('\n'), 'the scopes') : h('p', { class: 'muted' }, 'The scope list is not available.')),
      h('li', null,
        h('h3', null, 'Create the OAuth client'),
        h('p', null, 'Under ', link('https://console.cloud.google.com/auth/clients', 'Clients'), ', choose Create client with:'),
        h('dl', { class: 'kv' },
          h('dt', null, 'Application type'), h('dd', null, h('strong', null, 'Web application')),
          h('dt', null, 'Name'), h('dd', null, 'Grantpool (any name)'),
          h('dt', null, 'Authorized redirect URIs'), h('dd', null, copyField(redirectUri, 'the redirect URI'))),
        h('p', { class: 'hint' }, 'The redirect URI must match exactly: scheme, host, port and path. Authorized JavaScript origins are not needed.'),
        problems.length ? h('div', { class: 'form-error', role: 'alert' }, problems.map((p) => h('p', null, p))) : null),
      h('li', null,
        h('h3', null, 'Download and upload the JSON'),
        h('p', null, 'Click "Download JSON" on the new client (the file is named client_secret_….json) and upload it below.')),
    ];
    replaceChildren(stepsBox, card(oauth.configured ? 'How the OAuth client is set up' : 'Create the OAuth client in Google Cloud',
      h('ol', { class: 'steps' }, steps)));
    renderProjects(st);
  }

  function renderProjects(st) {
    const testing = st.oauth?.testing_mode;
    replaceChildren(projectsBox,
      card('Give each account a project of its own', projectHelp(st)),
      card('Refresh tokens that die after 7 days',
        testing
          ? h('div', { class: 'notice notice-warn', role: 'alert', 'data-testid': 'testing-mode-setup' },
            h('p', null, h('strong', null, 'This looks like it is happening now: '), testing.message, '.'),
            h('ul', { class: 'plain-list' }, testing.accounts.map((a) => h('li', null, h('strong', null, a.email), ` died ${a.days} days after its consent`))),
            h('p', null, h('strong', null, 'Fix: '), testing.fix, '.'))
          : null,
        h('p', null, 'An OAuth app whose consent screen has the audience ', h('strong', null, 'External'), ' and the publishing status ',
          h('strong', null, 'Testing'), ' gets refresh tokens that expire 7 days after the consent. Its accounts then stop working every week with ',
          h('code', null, 'invalid_grant'), ' ("Token has been expired or revoked.") and have to be re-authorized.'),
        h('ol', { class: 'guide-steps' },
          h('li', null, h('p', null, 'Open ', link('https://console.cloud.google.com/auth/audience', 'Google Auth Platform → Audience'), ' in the project of the OAuth client.')),
          h('li', null, h('p', null, 'Press ', h('strong', null, 'Publish app'), ' and confirm: the status becomes "In production". The app does not need Google\'s verification for your own accounts: the consent then shows a "Google hasn\'t verified this app" warning that you click through (Advanced → Go to …).')),
          h('li', null, h('p', null, 'Re-authorize the accounts once (Accounts → Re-authorize). Their new refresh tokens do not expire after a week.'))),
        h('p', { class: 'hint' }, 'An Internal app (a Google Workspace organisation) has no such limit. Grantpool says so here, on the Accounts page and in ',
          h('code', null, 'grantpool status'), ' / ', h('code', null, 'grantpool doctor'), ' when accounts die about 7 days after they were authorized.')));
  }

  function renderUpload() {
    const st = app.state.status ?? {};
    const fileId = uid('csfile');
    const pasteId = uid('cspaste');
    const result = h('div', { 'aria-live': 'polite' });
    const fileInput = h('input', { id: fileId, type: 'file', accept: '.json,application/json', class: 'file-input' });
    const drop = h('label', { for: fileId, class: 'dropzone' },
      h('strong', null, 'Choose client_secret.json'),
      h('span', { class: 'muted' }, 'or drop the file here'));
    const pasteArea = h('textarea', { id: pasteId, rows: '6', spellcheck: 'false', autocomplete: 'off', class: 'mono' });
    const pasteBtn = h('button', { type: 'button', class: 'btn btn-secondary' }, 'Upload pasted JSON');

    async function upload(text, button) {
      clear(result);
      const local = checkClientSecret(text);
      if (local) {
        result.append(errorBox({ message: local }));
        return;
      }
      if (button) setBusy(button, true, 'Uploading…');
      drop.classList.add('is-busy');
      try {
        const res = await api.uploadClientSecret(text);
        pasteArea.value = '';
        result.append(h('div', { class: 'notice notice-ok', role: 'status' },
          h('p', null, h('strong', null, 'Saved. '), 'OAuth client ', h('code', null, res?.client_id ?? ''), ' is ready.'),
          h('p', null, h('a', { href: '#accounts', class: 'btn btn-primary' }, 'Add accounts'))));
        toast('OAuth client saved.', 'ok');
        await app.refreshStatus().catch(() => {});
      } catch (err) {
        result.append(errorBox(err));
      } finally {
        if (button) setBusy(button, false);
        drop.classList.remove('is-busy');
        fileInput.value = '';
      }
    }

    fileInput.addEventListener('change', async () => {
      const f = fileInput.files?.[0];
      if (f) upload(await f.text());
    });
    drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('is-over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('is-over'));
    drop.addEventListener('drop', async (e) => {
      e.preventDefault();
      drop.classList.remove('is-over');
      const f = e.dataTransfer?.files?.[0];
      if (f) upload(await f.text());
    });
    pasteBtn.addEventListener('click', () => upload(pasteArea.value.trim(), pasteBtn));

    replaceChildren(uploadBox, card(st.oauth?.configured ? 'Replace the client_secret.json' : 'Upload client_secret.json',
      h('div', { class: 'stack' },
        fileInput, drop,
        h('details', null, h('summary', null, 'Or paste its content'),
          h('div', { class: 'stack' }, h('label', { for: pasteId }, 'client_secret.json content'), pasteArea, h('div', null, pasteBtn))),
        h('p', { class: 'hint' }, 'The file is checked and stored in the data directory, readable only by the gateway\'s user. Its secret is never shown again.'),
        result)));
  }

  render();
  renderUpload();
  return {
    update(kind) {
      if (kind === 'status') render();
    },
  };
}

/** What a project is for, how to make one and enable the Gemini API in it, and what the free tier gives. */
function projectHelp(st) {
  const shared = st.pool?.shared_lanes ?? [];
  return h('div', { class: 'stack' },
    h('p', null, 'Google meters the Gemini API per ', h('strong', null, 'Google Cloud project'),
      ', not per person. An account without a project of its own is charged to the OAuth client\'s project, which every such account shares: when that project hits its limit, all of them do, and rotating between them gains nothing. Give each account a project of its own and the pool gets that project\'s quota too.'),
    shared.length
      ? h('div', { class: 'notice notice-warn', role: 'status' }, h('p', null, shared[0].warning,
        shared.length > 1 ? ` (${shared.length} projects are shared by several accounts).` : '.'))
      : null,
    h('ol', { class: 'guide-steps' },
      h('li', null,
        h('h3', null, 'Create a project for the account'),
        h('p', null, 'Signed in to Google as that account, open ', link('https://console.cloud.google.com/projectcreate', 'New project'),
          ' and create one (any name). A project costs nothing; the Gemini API\'s free tier needs no billing account.')),
      h('li', null,
        h('h3', null, 'Enable the Gemini API in it'),
        h('p', null, 'Open the ', link('https://console.cloud.google.com/apis/library/generativelanguage.googleapis.com', 'Generative Language API'),
          ', pick the new project and press Enable. Or let Grantpool do it: on the ', h('a', { href: '#accounts' }, 'Accounts'),
          ' page, "Choose project" on the account, then "Enable Gemini API" next to the project (Grantpool enables nothing unless you press it).')),
      h('li', null,
        h('h3', null, 'Let Grantpool find it'),
        h('p', null, 'When an account is added, Grantpool looks for its first project with the Gemini API enabled and uses it (the Project column). Added before the project existed? "Choose project" → "Use", or "Look again". From a shell: ',
          h('code', null, 'grantpool accounts project <email> --use <project>'), '.'),
        h('p', { class: 'hint' }, 'Finding projects needs the account\'s permission to see its Google Cloud data (the cloud-platform scope). An account added without it shows "Re-authorize": Google then adds that permission to what the account already granted.'))),
    h('p', { class: 'hint' }, 'The free tier, honestly: limits are per project and per model (requests per minute and per day) and Google changes them (',
      link('https://ai.google.dev/gemini-api/docs/rate-limits', 'current limits'), '). Pro models may have no free tier at all. Two accounts on one project share its quota and add none.'));
}

function link(href, text) {
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, text);
}

/** A quick check before uploading, so that an obviously wrong file gets a clear word at once. */
export function checkClientSecret(text) {
  if (!text) return 'The file is empty.';
  let obj;
  try {
    obj = JSON.parse(text);
  } catch {
    return 'This is not a JSON file. Download the JSON of the OAuth client from the Google Cloud console (Clients → your client → Download JSON).';
  }
  const inner = obj && (obj.web ?? obj.installed);
  if (!inner || typeof inner !== 'object') {
    return 'This JSON has no "web" or "installed" section, so it is not an OAuth client file. A service account key does not work here: create an OAuth client of type Web application.';
  }
  if (!inner.client_id || !inner.client_secret) return 'The file has no client_id or client_secret. Download it again from the Google Cloud console.';
  return null;
}
