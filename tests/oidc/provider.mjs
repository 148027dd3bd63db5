// A real OpenID Connect provider (node-oidc-provider, certified) on loopback
// for authledger's tests: one confidential client `authledger` (secret
// `authledger-secret`, PKCE required) whose redirect URIs are given as
// `--redirect-uri URL` (repeatable). It listens on 127.0.0.1 (a free port, or
// `--port N`) and prints `{"issuer": "http://127.0.0.1:PORT"}` once ready.
//
// Its sign-in is a test's form, not a person's: `POST /interaction/{uid}/login`
// with `login=<account id>` and `amr=<methods, comma separated>` signs in and
// consents at once (a `name` field renames the account from then on);
// `GET /interaction/{uid}/abort` answers `access_denied`.
// Accounts exist for any id: `<id>@example.org`, verified unless the id starts
// with `unverified-`. `POST /_test/tamper` corrupts the signature of the next
// ID token the token endpoint hands out.
import http from 'node:http';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    port: { type: 'string', default: '0' },
  },
});
const server = http.createServer();
await new Promise((ready) => server.listen(Number(args.port), '127.0.0.1', ready));
const issuer = `http://127.0.0.1:${server.address().port}`;
let tamper = false;
const names = new Map(); // account id → the full name a sign-in gave it (default `User <id>`)

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'authledger',
    client_secret: 'authledger-secret',
    redirect_uris: args['redirect-uri'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  pkce: { required: () => true },
  ttl: { Interaction: 600, Grant: 600, Session: 600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600 },
  cookies: { keys: ['loopback-test-only'] },
  conformIdTokenClaims: false, // email and name in the ID token itself
  claims: {
    amr: null,
    openid: ['sub', 'amr'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  features: { devInteractions: { enabled: false } },
  findAccount: (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({
      sub,
      email: `${sub.replace(/^unverified-/, '')}@example.org`,
      email_verified: !sub.startsWith('unverified-'),
      name: names.get(sub) ?? `User ${sub}`,
      preferred_username: sub,
    }),
  }),
});

const form = (req) => new Promise((done) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => done(new URLSearchParams(body)));
});
const finish = (req, res, result) => provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
const callback = provider.callback();

server.on('request', async (req, res) => {
  try {
    const path = new URL(req.url, issuer).pathname;
    const match = path.match(/^\/(interaction|_test)\/([\w-]+)(\/login|\/abort)?$/);
    if (match?.[1] === 'interaction' && !match[3]) {
      res.setHeader('content-type', 'text/html');
      return res.end(`<form method="post" action="/interaction/${match[2]}/login"><input name="login"><input name="amr" value="pwd"><button type="submit">Sign in</button></form>`);
    }
    if (match?.[3] === '/login') { // signs in and consents at once
      const { params } = await provider.interactionDetails(req, res);
      const fields = await form(req);
      const grant = new provider.Grant({ accountId: fields.get('login'), clientId: params.client_id });
      grant.addOIDCScope(params.scope);
      const amr = fields.get('amr') ? fields.get('amr').split(',') : undefined;
      if (fields.get('name')) names.set(fields.get('login'), fields.get('name'));
      return finish(req, res, { login: { accountId: fields.get('login'), amr }, consent: { grantId: await grant.save() } });
    }
    if (match?.[3] === '/abort') return finish(req, res, { error: 'access_denied' });
    if (match?.[1] === '_test' && match[2] === 'tamper') {
      tamper = true;
      res.statusCode = 204;
      return res.end();
    }
    if (path === '/token' && tamper) { // flip the next ID token's signature tail
      tamper = false;
      const { end } = res;
      res.end = (body) => {
        const tokens = JSON.parse(body);
        tokens.id_token = tokens.id_token.replace(/.{4}$/, (tail) => (tail === 'AAAA' ? 'BBBB' : 'AAAA'));
        return end.call(res, JSON.stringify(tokens));
      };
    }
    return callback(req, res);
  } catch (error) {
    res.statusCode = 500;
    res.end(String(error));
  }
});
console.log(JSON.stringify({ issuer }));
