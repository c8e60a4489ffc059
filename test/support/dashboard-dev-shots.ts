// Dev aid: start the fake API, log in, and screenshot every view (laptop and phone).
// Run: ./node_modules/.bin/node test/support/dashboard-dev-shots.ts
import { startFakeGateway } from './fake-management-api.ts';
import { launchBrowser, loginDashboard, screenshot } from './dashboard-browser.ts';

const fake = await startFakeGateway();
fake.setClientFailing(process.argv.includes('--failing'));
const errors: string[] = [];
for (const [suffix, viewport, scheme] of [['', { width: 1366, height: 900 }, 'light'], ['-phone', { width: 390, height: 844 }, 'light'], ['-dark', { width: 1366, height: 900 }, 'dark']] as const) {
  const b = await launchBrowser({ viewport, colorScheme: scheme });
  b.page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') errors.push(`${suffix}: ${m.text()}`); });
  b.page.on('pageerror', (e) => errors.push(`${suffix}: ${e.message}`));
  await b.page.goto(fake.url + '/');
  await screenshot(b.page, `dev-login${suffix}`);
  await loginDashboard(b.page, fake.url, fake.adminToken);
  for (const view of ['accounts', 'proxy', 'requests', 'setup']) {
    await b.page.goto(`${fake.url}/#${view}`);
    await b.page.waitForTimeout(600);
    await screenshot(b.page, `dev-${view}${suffix}`);
  }
  await b.close();
}
console.log(errors.join('\n') || 'no console errors');
await fake.close();
