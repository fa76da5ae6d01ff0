/**
 * A throw-away PKI for the TLS tests, made with Debian's `openssl` CLI in a temporary folder:
 *  - a test CA, a server certificate it signed (for `serverName`, localhost and 127.0.0.1) and a
 *    client certificate it signed (CN k2-client, for mTLS);
 *  - a second, untrusted CA with a client certificate of its own (a stranger) and a server
 *    certificate of its own (an impostor), to show what is refused.
 * EC P-256 keys (quick to make); version 3 certificates with SAN and key usages, as rustls (Temporal's
 * native client) requires. cleanup() removes the folder.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestPki {
  dir: string;
  /** The name in the server certificate that is neither localhost nor an IP: clients must ask for it (TLS server name). */
  serverName: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** CN of the client certificate. */
  clientName: string;
  otherCaFile: string;
  /** A client certificate signed by the other CA. */
  strangerCertFile: string;
  strangerKeyFile: string;
  /** A server certificate for the same names, signed by the other CA. */
  impostorCertFile: string;
  impostorKeyFile: string;
  read(file: string): Buffer;
  cleanup(): void;
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function createTestPki(serverName = 'temporal.k2.test'): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-tls-'));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  const makeCa = (name: string, cn: string) => {
    openssl(
      'req',
      '-x509',
      ...ecKey,
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.pem`),
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
  };
  const makeLeaf = (name: string, ca: string, cn: string, extensions: string) => {
    fs.writeFileSync(file(`${name}.ext`), extensions);
    openssl('req', '-new', ...ecKey, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${cn}`);
    openssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file(`${ca}.pem`),
      '-CAkey',
      file(`${ca}.key`),
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      file(`${name}.pem`),
      '-extfile',
      file(`${name}.ext`),
    );
  };
  const serverExt = `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:${serverName},DNS:localhost,IP:127.0.0.1\n`;
  const clientExt = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n';

  const clientName = 'k2-client';
  makeCa('ca', 'K2 test CA');
  makeLeaf('server', 'ca', serverName, serverExt);
  makeLeaf('client', 'ca', clientName, clientExt);
  makeCa('other-ca', 'Some other CA');
  makeLeaf('stranger', 'other-ca', 'stranger', clientExt);
  makeLeaf('impostor', 'other-ca', serverName, serverExt);

  return {
    dir,
    serverName,
    caFile: file('ca.pem'),
    serverCertFile: file('server.pem'),
    serverKeyFile: file('server.key'),
    clientCertFile: file('client.pem'),
    clientKeyFile: file('client.key'),
    clientName,
    otherCaFile: file('other-ca.pem'),
    strangerCertFile: file('stranger.pem'),
    strangerKeyFile: file('stranger.key'),
    impostorCertFile: file('impostor.pem'),
    impostorKeyFile: file('impostor.key'),
    read: (f: string) => fs.readFileSync(f),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
