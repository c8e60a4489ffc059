// The Resource Manager and Service Usage APIs in the OAuth client's project
// (project discovery needs both): the check against the Resource Manager /
// Service Usage stand-in with each API on and off, and `grantpool doctor`
// end to end with the real gateway, OIDC stand-in and an added account.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCloudProjects, CLOUD_PLATFORM_SCOPE } from '../support/cloud-projects.ts';
import { GoogleApis } from '../../src/projects/google-apis.ts';
import { checkClientApis } from '../../src/projects/client-apis.ts';
import { startStack } from '../support/stack.ts';
import { runCli } from '../support/run-cli.ts';

const RETRIEVER = 'https://www.googleapis.com/auth/generative-language.retriever';

test('each API is read as enabled, disabled (with Google\'s link to enable it) or not checked (and why)', async () => {
  const cloud = await startCloudProjects({
    clientProject: 'owner-of-client',
    tokenInfo: async (t) =>
      t === 'tok-cloud' ? { email: 'ann@example.com', scopes: [CLOUD_PLATFORM_SCOPE] } : t === 'tok-gl' ? { email: 'ann@example.com', scopes: [RETRIEVER] } : null,
  });
  try {
    cloud.addProject('owner-of-client', { members: { 'root@example.com': 'owner' } });
    cloud.addProject('ann-proj', { members: { 'ann@example.com': 'owner' } });
    const api = new GoogleApis({ resourceManagerBaseUrl: cloud.url, serviceUsageBaseUrl: cloud.url });
    const states = async (token = 'tok-cloud', probeProject: string | null = null) =>
      (await checkClientApis(api, token, { probeProject, clientProject: 'owner-of-client' })).map((c) => [c.title, c.state]);

    assert.deepEqual(await states(), [['Cloud Resource Manager API', 'enabled'], ['Service Usage API', 'enabled']]);
    // The account may not read the client's project; Service Usage still let the call through.
    assert.deepEqual(await states('tok-cloud', 'owner-of-client'), [['Cloud Resource Manager API', 'enabled'], ['Service Usage API', 'enabled']]);

    cloud.setClientApisEnabled({ resourceManager: false, serviceUsage: true });
    const rmOff = await checkClientApis(api, 'tok-cloud', { clientProject: 'owner-of-client' });
    assert.deepEqual(rmOff.map((c) => c.state), ['disabled', 'enabled'], 'with Resource Manager off, Service Usage is asked about the client\'s project');
    assert.match(rmOff[0]!.detail, /off in the OAuth client's project \(projects\/owner-of-client\): Cloud Resource Manager: Cloud Resource Manager API has not been used in project owner-of-client/);
    assert.ok(rmOff[0]!.fix!.includes('https://console.developers.google.com/apis/api/cloudresourcemanager.googleapis.com/overview?project=owner-of-client'), rmOff[0]!.fix!);
    assert.match(rmOff[0]!.fix!, /^enable the Cloud Resource Manager API in the Google Cloud project that owns the OAuth client \(owner-of-client\)/);

    cloud.setClientApisEnabled({ resourceManager: true, serviceUsage: false });
    const suOff = await checkClientApis(api, 'tok-cloud', { clientProject: 'owner-of-client' });
    assert.deepEqual(suOff.map((c) => c.state), ['enabled', 'disabled']);
    assert.ok(suOff[1]!.fix!.includes('serviceusage.googleapis.com/overview?project=owner-of-client'));

    cloud.setClientApisEnabled(false);
    assert.deepEqual(await states(), [['Cloud Resource Manager API', 'disabled'], ['Service Usage API', 'disabled']]);

    cloud.setClientApisEnabled(true);
    const noScope = await checkClientApis(api, 'tok-gl', { clientProject: 'owner-of-client' });
    assert.deepEqual(noScope.map((c) => c.state), ['unknown', 'unknown']);
    assert.match(noScope[0]!.detail, /not checked: .*insufficient authentication scopes/);
    assert.match(noScope[0]!.fix!, /cloud-platform/);

    const down = await checkClientApis(new GoogleApis({ resourceManagerBaseUrl: 'http://127.0.0.1:9', serviceUsageBaseUrl: 'http://127.0.0.1:9' }), 'tok-cloud', {});
    assert.deepEqual(down.map((c) => c.state), ['unknown', 'unknown']);
    assert.match(down[0]!.detail, /not checked: Cloud Resource Manager could not be reached/);
  } finally {
    await cloud.close();
  }
});

test('grantpool doctor checks both APIs in the OAuth client\'s project with an account\'s token, and says what to do when one is off', async () => {
  const stack = await startStack({ cloud: {} });
  try {
    const cloud = stack.cloud!;
    const doctor = () => runCli(['doctor'], stack.env);

    const none = await doctor();
    assert.match(none.out, /warn Resource Manager and Service Usage APIs: not checked: no working account has granted the cloud-platform scope yet/);
    assert.match(none.out, /fix: enable the Cloud Resource Manager API \(https:\/\/console\.cloud\.google\.com\/apis\/library\/cloudresourcemanager\.googleapis\.com\)/);
    assert.equal(none.code, 0, none.out);

    cloud.addProject('ann-proj', { members: { 'ann@example.com': 'owner' }, enabled: ['generativelanguage.googleapis.com'] });
    stack.issuer.addUser({ email: 'ann@example.com' });
    await stack.addAccount('ann@example.com');

    const good = await doctor();
    assert.match(good.out, /ok {3}Cloud Resource Manager API in grantpool-standin \(for project discovery\): enabled \(projects:search answered\), asked as ann@example\.com/);
    assert.match(good.out, /ok {3}Service Usage API in grantpool-standin \(for project discovery\): enabled/);
    assert.equal(good.code, 0, good.out);

    cloud.setClientApisEnabled({ resourceManager: false, serviceUsage: true });
    const rmOff = await doctor();
    assert.equal(rmOff.code, 1, 'an API that discovery needs being off is a failed check');
    assert.match(rmOff.out, /FAIL Cloud Resource Manager API in grantpool-standin \(for project discovery\): off in the OAuth client's project/);
    assert.match(rmOff.out, /fix: enable the Cloud Resource Manager API in the Google Cloud project that owns the OAuth client \(grantpool-standin\): open https:\/\/console\.developers\.google\.com\/apis\/api\/cloudresourcemanager\.googleapis\.com\/overview\?project=grantpool-standin, press Enable/);
    assert.match(rmOff.out, /ok {3}Service Usage API in grantpool-standin/);
    assert.match(rmOff.out, /1 check\(s\) failed/);

    cloud.setClientApisEnabled({ resourceManager: true, serviceUsage: false });
    const suOff = await doctor();
    assert.equal(suOff.code, 1);
    assert.match(suOff.out, /FAIL Service Usage API in grantpool-standin \(for project discovery\): off in the OAuth client's project/);
    assert.match(suOff.out, /fix: enable the Service Usage API .*serviceusage\.googleapis\.com\/overview\?project=grantpool-standin/);
    // Calls were made with the account's own token, not anyone else's.
    assert.ok(cloud.calls.filter((c) => c.path === '/v3/projects:search').every((c) => c.email === 'ann@example.com'));
  } finally {
    await stack.close();
  }
});
