// Settings of this browser (localStorage): page size, the server to talk
// to and whether the Devices view offers the drop button. They work
// without a server, so the login page links here.

import { h } from '../dom.js';
import { field, onSubmit } from '../form.js';
import { settings, saveSettings, resetSettings, apiBase, PAGE_SIZE_MIN, PAGE_SIZE_MAX } from '../prefs.js';
import { details } from '../format.js';

const HOST_PATTERN = '[A-Za-z0-9._\\-]+|\\[[0-9A-Fa-f:.]+\\]|[0-9A-Fa-f:.]+';

export default {
  id: 'settings',
  title: 'Settings',
  roles: [],
  topics: [],
  public: true,

  async render(root, ctx) {
    const loggedIn = Boolean(ctx.user);
    const pageSize = h('input', {
      type: 'number', name: 'pageSize', 'data-test': 'settings-page-size', required: true,
      min: PAGE_SIZE_MIN, max: PAGE_SIZE_MAX, step: 1, value: settings.pageSize,
    });
    const host = h('input', {
      name: 'host', 'data-test': 'settings-host', value: settings.host, placeholder: location.hostname,
      autocomplete: 'off', spellcheck: 'false', pattern: HOST_PATTERN,
      'data-pattern-message': 'Enter a host name or an IP address, without scheme, port or path.',
    });
    const port = h('input', {
      type: 'number', name: 'port', 'data-test': 'settings-port', min: 1, max: 65535, step: 1,
      value: settings.port, placeholder: location.port || (location.protocol === 'http:' ? '80' : '443'),
    });
    const https = h('input', { type: 'checkbox', name: 'https', 'data-test': 'settings-https', checked: settings.https });
    const allowDrop = h('input', { type: 'checkbox', name: 'allowDeviceDrop', 'data-test': 'settings-allow-drop', checked: settings.allowDeviceDrop });
    const base = h('code', { 'data-test': 'settings-api-base' }, apiBase() || location.origin);

    const form = h('form', { class: 'settings-form panel' },
      h('div', { class: 'form-error', 'data-test': 'form-error', role: 'alert', hidden: true }),
      h('h2', {}, 'Lists'),
      field(`Page size (${PAGE_SIZE_MIN}–${PAGE_SIZE_MAX})`, pageSize, { hint: 'Rows per page in every list.' }),
      h('h2', {}, 'Server'),
      field('Server host', host, { hint: 'Leave empty to use the server this page came from.' }),
      field('Port', port, { hint: 'Leave empty for the port of this page.' }),
      h('div', { class: 'field check' }, h('label', {}, https, ' Use HTTPS')),
      h('p', { class: 'hint' }, 'API base URL: ', base),
      h('h2', {}, 'Devices'),
      h('div', { class: 'field check' }, h('label', {}, allowDrop, ' Allow device drop'),
        h('div', { class: 'hint' }, 'Shows the drop button in the Devices view to users with the DROPDEVICE role.')),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'btn btn-primary', 'data-test': 'settings-save' }, 'Save'),
        h('button', {
          type: 'button', class: 'btn btn-secondary', 'data-test': 'settings-reset',
          onclick: () => {
            resetSettings();
            ctx.toast('Settings reset to the defaults.');
            ctx.rerender();
          },
        }, 'Reset to defaults')),
      h('p', { class: 'hint' }, 'These settings are kept in this browser only.'));

    onSubmit(form, async (v) => {
      saveSettings({
        pageSize: v.pageSize,
        host: v.host,
        port: v.port === null ? '' : v.port,
        https: v.https,
        allowDeviceDrop: v.allowDeviceDrop,
      });
      base.textContent = apiBase() || location.origin;
      ctx.toast('Settings saved.');
    });

    root.replaceChildren(...[
      loggedIn ? null : h('p', { class: 'back' }, h('a', { href: '#/', 'data-test': 'back-to-login' }, '← Back to login')),
      form,
      h('section', { class: 'panel' }, h('h2', {}, 'In force'), details([
        ['Page size', String(settings.pageSize)],
        ['API base URL', apiBase() || location.origin],
        ['Allow device drop', settings.allowDeviceDrop ? 'yes' : 'no'],
      ])),
    ].filter(Boolean));
  },
};
