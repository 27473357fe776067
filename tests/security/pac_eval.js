// Evaluates a PAC file the way browsers do, with the standard helpers (Netscape's
// definitions): `node pac_eval.js PAC_FILE URL...` prints a JSON list of routes.
'use strict';
const fs = require('fs');
const vm = require('vm');

const helpers = {
  isPlainHostName: (host) => host.indexOf('.') === -1,
  dnsDomainIs: (host, domain) =>
    host.length >= domain.length && host.substring(host.length - domain.length) === domain,
  shExpMatch: (str, pattern) => {
    const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    return new RegExp('^' + re + '$').test(str);
  },
};
const [pacFile, ...urls] = process.argv.slice(2);
const sandbox = vm.createContext({ ...helpers });
vm.runInContext(fs.readFileSync(pacFile, 'utf8'), sandbox, { filename: pacFile });
const routes = urls.map((url) => {
  const host = new URL(url).hostname;  // what browsers pass: the host without the port
  return sandbox.FindProxyForURL(url, host);
});
process.stdout.write(JSON.stringify(routes));
