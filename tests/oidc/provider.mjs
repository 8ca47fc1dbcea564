// A real OpenID provider for the sign-in tests: the certified `oidc-provider` package on
// 127.0.0.1 and a free port, with keys of its own. The tests drive it over a few /test/ routes:
// who signs in next and with which claims, a key rotation, a short ID token lifetime.
// Started by tests/suite/oidc_sign_in.rs; it prints {"issuer": ...} on its first line of stdout.
//
//   OIDC_CLIENTS='[{"client_id":"a","client_secret":"s","redirect_uris":["http://127.0.0.1:8080/sign-in/provider/callback"]}]' \
//     node tests/oidc/provider.mjs
//
// For `locator demo` (README): `OIDC_DEMO=1 PORT=9400 node tests/oidc/provider.mjs` registers the
// demo's client (`child-locator-demo`, coming back to http://127.0.0.1:8080, or APP_URL) and three
// made-up people, and asks which of them you are.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const demo = process.env.OIDC_DEMO === '1';
const appUrl = (process.env.APP_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const clients = process.env.OIDC_CLIENTS
  ? JSON.parse(process.env.OIDC_CLIENTS)
  : demo
    ? [{
        client_id: 'child-locator-demo',
        client_secret: 'demo-only-secret',
        redirect_uris: [`${appUrl}/sign-in/provider/callback`],
        post_logout_redirect_uris: [`${appUrl}/sign-in`],
      }]
    : [];
const accounts = new Map(); // sub -> claims
if (demo) {
  accounts.set('demo-practitioner', { name: 'Demo Practitioner (IdP)', email: 'practitioner@northshire.demo.invalid', groups: ['sw'] });
  accounts.set('demo-ig-officer', { name: 'Demo IG Officer (IdP)', email: 'ig@northshire.demo.invalid', groups: ['ig'] });
  accounts.set('demo-org-admin', { name: 'Demo Org Admin (IdP)', email: 'admin@northshire.demo.invalid', groups: ['admins'] });
}
let nextLogin = null;
let idTokenTtl = 3600;
let conformIdTokenClaims = false;
let keys = [newKey()];
let provider;
let issuer;

function newKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };
}

function build() {
  provider = new Provider(issuer, {
    clients,
    jwks: { keys },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    findAccount: async (ctx, sub) => {
      const claims = accounts.get(sub);
      return claims && { accountId: sub, claims: async () => ({ sub, ...claims }) };
    },
    claims: {
      openid: ['sub'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username', 'tid'],
      email: ['email'],
      groups: ['groups'],
    },
    // false: the scopes' claims go in the ID token too (as Entra puts `groups` there); true:
    // only at userinfo (as NHS CIS2 answers its roles).
    conformIdTokenClaims,
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
    ttl: { IdToken: () => idTokenTtl },
  });
}

async function body(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text ? JSON.parse(text) : {};
}

function json(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (url.pathname === '/test/account' && req.method === 'POST') {
      const { sub, claims } = await body(req);
      accounts.set(sub, claims);
      return json(res, 200, { ok: true });
    }
    if (url.pathname === '/test/login' && req.method === 'POST') {
      nextLogin = (await body(req)).sub ?? null;
      return json(res, 200, { ok: true });
    }
    if (url.pathname === '/test/rotate' && req.method === 'POST') {
      keys = [newKey()]; // the old key is gone: tokens it signed no longer verify
      build();
      return json(res, 200, { kid: keys[0].kid });
    }
    if (url.pathname === '/test/config' && req.method === 'POST') {
      const given = await body(req);
      if (given.idTokenTtl !== undefined) idTokenTtl = given.idTokenTtl;
      if (given.conformIdTokenClaims !== undefined) conformIdTokenClaims = given.conformIdTokenClaims;
      build();
      return json(res, 200, { ok: true });
    }
    if (url.pathname.startsWith('/interaction/')) {
      // The person "signs in" as the test said, and consents to what was asked.
      const details = await provider.interactionDetails(req, res);
      const chosen = url.searchParams.get('as');
      if (demo && !nextLogin && !chosen) {
        // The demo: ask who you are (made-up people only).
        const links = [...accounts.entries()]
          .map(([sub, c]) => `<li><a href="${url.pathname}?as=${encodeURIComponent(sub)}">${c.name}</a></li>`)
          .join('');
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end(`<!DOCTYPE html><html lang="en"><title>Demo identity provider</title><h1>Demo identity provider</h1><p>Made-up people only. Sign in as:</p><ul>${links}</ul></html>`);
      }
      const who = chosen && accounts.has(chosen) ? chosen : nextLogin;
      if (!who || !accounts.has(who)) {
        return provider.interactionFinished(req, res, { error: 'access_denied' }, { mergeWithLastSubmission: false });
      }
      const grant = new provider.Grant({ accountId: who, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      const grantId = await grant.save();
      return provider.interactionFinished(
        req,
        res,
        { login: { accountId: who }, consent: { grantId } },
        { mergeWithLastSubmission: false },
      );
    }
    return provider.callback()(req, res);
  } catch (e) {
    console.error(`provider error: ${e.message}`);
    if (!res.headersSent) json(res, 500, { error: 'server_error' });
  }
});

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  build();
  console.log(JSON.stringify({ issuer }));
});
if (!demo) {
  process.stdin.on('end', () => process.exit(0)); // the test went away
  process.stdin.resume();
}
