// Account: the logged-in user's own name and roles, and the change of its
// own password (every user may; it ends the user's tokens on every node,
// so the user logs in again).
//
// Test hooks: [data-test=account-name], [data-test=account-roles],
// [data-test=account-current], [data-test=account-new],
// [data-test=account-confirm], [data-test=account-submit]; errors
// [data-test=error-current|new|confirm], [data-test=form-error].

import { h, fieldError, clearErrors } from '../dom.js';
import { formError } from '../form.js';
import { busy, codeOf, dl, field, input, messageOf, mount, note, section } from './widgets.js';
import { checkPassword } from './users.js';

export default {
  id: 'account',
  title: 'Account',
  roles: [],
  topics: [],
  keep: true,

  async render(root, ctx) {
    const user = ctx.user && typeof ctx.user === 'object' ? ctx.user.name : ctx.user;
    const roles = (ctx.user && ctx.user.roles) || ctx.roles || [];

    const current = input({ type: 'password', name: 'current', 'data-test': 'account-current',
      autocomplete: 'current-password', required: '' });
    const next = input({ type: 'password', name: 'new', 'data-test': 'account-new', autocomplete: 'new-password',
      required: '' });
    const confirm = input({ type: 'password', name: 'confirm', 'data-test': 'account-confirm',
      autocomplete: 'new-password', required: '' });
    // Every user may change its own password, as every user may log out:
    // the button needs no role, so it carries no data-write (which marks
    // the controls hidden from users without a role).
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-test': 'account-submit' },
      'Change password');
    const form = h('form', { class: 'form', 'data-test': 'account-form', novalidate: '' },
      // A user name field lets password managers tie the new password to
      // the account.
      h('input', { type: 'text', name: 'username', autocomplete: 'username', value: user || '', hidden: true,
        'aria-hidden': 'true', tabindex: '-1', readonly: true }),
      field('Current password', current),
      field('New password', next, '8 to 256 characters.'),
      field('New password again', confirm),
      h('div', { class: 'actions' }, submit));

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      let bad = false;
      if (current.value === '') {
        fieldError(current, 'Enter your current password.', 'current');
        bad = true;
      }
      const problem = checkPassword(next.value);
      if (problem) {
        fieldError(next, problem, 'new');
        bad = true;
      } else if (next.value === current.value) {
        fieldError(next, 'Choose a password other than the current one.', 'new');
        bad = true;
      }
      if (!problem && confirm.value !== next.value) {
        fieldError(confirm, 'The two new passwords differ.', 'confirm');
        bad = true;
      }
      if (bad) return;
      await busy(submit, async () => {
        try {
          await ctx.api.send('PUT', '/api/v1/auth/password', { current: current.value, new: next.value });
          current.value = next.value = confirm.value = '';
          ctx.toast('Password changed; log in again with the new one');
          // The change ended this session's token: the next request is
          // refused and the app shows the login page.
          if (typeof ctx.logout === 'function') ctx.logout();
          else await ctx.api.get('/api/v1/licensing-id').catch(() => null);
        } catch (err) {
          const msg = messageOf(err);
          const code = codeOf(err);
          if (code === 'bad_credentials') fieldError(current, 'The current password is wrong.', 'current');
          else if (code === 'weak_password') fieldError(next, msg, 'new');
          else formError(form, msg);
        }
      });
    });

    mount(root,
      section('You', { 'data-test': 'account-info' }, dl([
        ['User', user || '—', 'account-name'],
        ['Roles', roles.length ? roles.join(', ') : '—', 'account-roles'],
      ])),
      section('Change your password', { 'data-test': 'account-password' },
        note('Changing the password ends your sessions on every node; you log in again afterwards.'),
        form));
  },
};
