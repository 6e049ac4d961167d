// Users: the administrators' accounts and their roles. ADMIN adds a user,
// changes roles, resets a password and deletes a user; the server refuses
// a change that would leave no user with ADMIN.
//
// Test hooks: table[data-test=table-users] with rows keyed by user name,
// in each row [data-test=user-edit] and [data-test=user-delete]; the
// create form [data-test=user-create-name], [data-test=user-create-password],
// [data-test=user-create-role-<ROLE>] checkboxes, [data-test=user-create]; the
// edit panel [data-test=user-editor] with [data-test=edit-role-<ROLE>],
// [data-test=user-roles-save], [data-test=user-new-password],
// [data-test=user-password-save], [data-test=user-editor-close]. Errors:
// [data-test=error-name|password|roles|edit-roles|edit-password],
// [data-test=form-error].

import { h, fieldError, clearErrors } from '../dom.js';
import { formError } from '../form.js';
import { pagedTable } from '../table.js';
import {
  busy, clientPage, codeOf, field, fmtTime, forget, input, keep, messageOf, mount, pill, ready, refreshView, section,
} from './widgets.js';

export const ROLES = ['ADMIN', 'READ', 'RESERVATIONS', 'OFFLINE', 'DROPDEVICE', 'KEYS'];
const ROLE_HELP = {
  ADMIN: 'every right, users and properties',
  READ: 'views only',
  RESERVATIONS: 'reservations and the pool model',
  OFFLINE: 'offline updates and rights files',
  DROPDEVICE: 'drop devices',
  KEYS: 'first-authentication keys',
};
const NAME_RE = /^[A-Za-z0-9._@-]{1,64}$/;

// checkPassword says what the password policy refuses ('' when nothing).
export function checkPassword(pw) {
  const n = new TextEncoder().encode(pw).length;
  if (n < 8) return 'At least 8 characters.';
  if (n > 256) return 'At most 256 bytes.';
  if (pw.trim() === '') return 'Not only white space.';
  return '';
}

const usersView = {
  id: 'users',
  title: 'Users',
  roles: ['ADMIN'],
  topics: ['users'],
  keep: true,

  async render(root, ctx) {
    const state = ctx.state;
    if (!state.table) state.table = {};
    const list = await ctx.api.get('/api/v1/users');
    const users = (list && list.items) || [];
    const can = ctx.can('ADMIN');
    const view = { root, ctx, state, can, users };

    const columns = [
      { title: 'Name', value: (u) => h('span', { class: 'uname' }, u.name,
        ctx.user && (ctx.user.name || ctx.user) === u.name ? h('span', { class: 'muted' }, ' (you)') : null) },
      { title: 'Roles', value: (u) => h('span', { class: 'roles' },
        ...(u.roles || []).flatMap((r) => [pill('neutral', r), ' '])) },
      { title: 'Created', value: (u) => fmtTime(u.created) },
      { title: 'Password changed', value: (u) => fmtTime(u.passwordChanged) },
    ];
    if (can) columns.push({ title: 'Actions', value: (u) => actions(view, u) });
    const table = pagedTable({
      name: 'users', columns, fetch: clientPage(users), key: (u) => u.name, state: state.table,
    });

    await ready(table);
    view.editorSlot = h('div', { class: 'slot' });
    if (state.editing && !users.some((u) => u.name === state.editing)) state.editing = null;
    fillEditor(view);

    mount(root,
      section('Users and roles', { 'data-test': 'users-list' }, table),
      view.editorSlot,
      can ? createSection(view) : null);
  },
};

export default usersView;

function actions(view, u) {
  const { ctx, state } = view;
  const edit = h('button', { type: 'button', class: 'btn btn-small', 'data-write': '', 'data-test': 'user-edit' },
    'Edit');
  edit.addEventListener('click', () => {
    state.editing = u.name;
    forget(state, 'edit-');
    fillEditor(view);
    const ed = view.editorSlot.querySelector('[data-test="user-editor"]');
    if (ed && ed.scrollIntoView) ed.scrollIntoView({ block: 'nearest' });
  });
  const del = h('button', { type: 'button', class: 'btn btn-small btn-danger', 'data-write': '', 'data-test': 'user-delete' },
    'Delete');
  del.addEventListener('click', () => {
    // eslint-disable-next-line no-alert
    if (!window.confirm(`Delete the user ${u.name}? Its tokens end at once.`)) return;
    busy(del, async () => {
      try {
        await ctx.api.send('DELETE', '/api/v1/users/' + encodeURIComponent(u.name));
        if (state.editing === u.name) state.editing = null;
        ctx.toast(`User ${u.name} deleted`);
        await refresh(view);
      } catch (err) {
        ctx.toast(codeOf(err) === 'last_admin' ? `${u.name} is the last user with ADMIN and stays.` : messageOf(err), 'error');
      }
    });
  });
  return h('div', { class: 'row-actions' }, edit, del);
}

// refresh draws the view again (the live update does the same, but may be
// down).
function refresh(view) {
  return refreshView(usersView, view.root, view.ctx);
}

function roleBoxes(state, prefix, testPrefix, checked) {
  const boxes = {};
  const items = ROLES.map((r) => {
    const box = input({ type: 'checkbox', name: 'roles', value: r, 'data-test': testPrefix + r },
      { checked: checked.includes(r) });
    keep(state, prefix + r, box);
    boxes[r] = box;
    return h('label', { class: 'check' }, box, ' ', r, h('span', { class: 'muted' }, ' — ' + ROLE_HELP[r]));
  });
  const group = h('fieldset', { class: 'roles-set' }, h('legend', {}, 'Roles'), ...items);
  return { group, boxes, value: () => ROLES.filter((r) => boxes[r].checked) };
}

function createSection(view) {
  const { ctx, state } = view;
  const name = keep(state, 'name', input({ type: 'text', name: 'name', 'data-test': 'user-create-name', maxlength: '64',
    autocomplete: 'off', required: '' }));
  const password = keep(state, 'password', input({ type: 'password', name: 'password', 'data-test': 'user-create-password',
    autocomplete: 'new-password', required: '' }));
  const roles = roleBoxes(state, 'role:', 'user-create-role-', ['READ']);
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-write': '', 'data-test': 'user-create' },
    'Add user');
  const form = h('form', { class: 'form', 'data-test': 'user-create-form', novalidate: '' },
    field('Name', name, 'Letters, digits and . _ @ -, at most 64.'),
    field('Password', password, '8 to 256 characters.'),
    roles.group,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    let bad = false;
    if (!NAME_RE.test(name.value)) {
      fieldError(name, name.value === '' ? 'Enter a name.' : 'Letters, digits and . _ @ - only, at most 64.', 'name');
      bad = true;
    }
    const pp = checkPassword(password.value);
    if (pp) {
      fieldError(password, pp, 'password');
      bad = true;
    }
    const picked = roles.value();
    if (picked.length === 0) {
      fieldError(roles.group, 'Choose at least one role.', 'roles');
      bad = true;
    }
    if (bad) return;
    await busy(submit, async () => {
      try {
        const u = await ctx.api.send('POST', '/api/v1/users', { name: name.value, password: password.value, roles: picked });
        forget(state, 'name');
        forget(state, 'password');
        forget(state, 'role:');
        ctx.toast(`User ${u && u.name ? u.name : name.value} added`);
        await refresh(view);
      } catch (err) {
        const msg = messageOf(err);
        const code = codeOf(err);
        if (code === 'user_exists') fieldError(name, msg, 'name');
        else if (code === 'weak_password') fieldError(password, msg, 'password');
        else if (code === 'invalid_user' && /role/i.test(msg)) fieldError(roles.group, msg, 'roles');
        else if (code === 'invalid_user') fieldError(name, msg, 'name');
        else formError(form, msg);
      }
    });
  });
  return section('Add a user', { 'data-test': 'user-create-section' }, form);
}

// fillEditor shows the panel that changes the roles or the password of the
// user being edited.
function fillEditor(view) {
  const { ctx, state, users } = view;
  const u = users.find((x) => x.name === state.editing);
  if (!u || !view.can) {
    mount(view.editorSlot);
    return;
  }
  const roles = roleBoxes(state, 'edit-role:' + u.name + ':', 'edit-role-', u.roles || []);
  const saveRoles = h('button', { type: 'submit', class: 'btn', 'data-write': '', 'data-test': 'user-roles-save' },
    'Save roles');
  const rolesForm = h('form', { class: 'form', novalidate: '' }, roles.group, h('div', { class: 'actions' }, saveRoles));
  rolesForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(rolesForm);
    const picked = roles.value();
    if (picked.length === 0) {
      fieldError(roles.group, 'Choose at least one role.', 'edit-roles');
      return;
    }
    await busy(saveRoles, async () => {
      try {
        await ctx.api.send('PUT', '/api/v1/users/' + encodeURIComponent(u.name), { roles: picked });
        forget(state, 'edit-role:' + u.name + ':');
        ctx.toast(`Roles of ${u.name} saved`);
        await refresh(view);
      } catch (err) {
        fieldError(roles.group, messageOf(err), 'edit-roles');
      }
    });
  });

  const pw = input({ type: 'password', name: 'password', 'data-test': 'user-new-password', autocomplete: 'new-password' });
  const savePw = h('button', { type: 'submit', class: 'btn', 'data-write': '', 'data-test': 'user-password-save' },
    'Reset password');
  const pwForm = h('form', { class: 'form', novalidate: '' },
    h('fieldset', {}, h('legend', {}, 'Reset the password'),
      field('New password', pw, 'The user\'s tokens end; it logs in with the new password.')),
    h('div', { class: 'actions' }, savePw));
  pwForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(pwForm);
    const problem = checkPassword(pw.value);
    if (problem) {
      fieldError(pw, problem, 'edit-password');
      return;
    }
    await busy(savePw, async () => {
      try {
        await ctx.api.send('PUT', '/api/v1/users/' + encodeURIComponent(u.name), { password: pw.value });
        pw.value = '';
        ctx.toast(`Password of ${u.name} reset`);
      } catch (err) {
        fieldError(pw, messageOf(err), 'edit-password');
      }
    });
  });

  const close = h('button', { type: 'button', class: 'btn btn-secondary', 'data-test': 'user-editor-close' }, 'Close');
  close.addEventListener('click', () => {
    state.editing = null;
    mount(view.editorSlot);
  });
  mount(view.editorSlot, section('Edit ' + u.name, { 'data-test': 'user-editor', 'data-key': u.name },
    h('div', { class: 'columns' }, rolesForm, pwForm), h('div', { class: 'actions' }, close)));
}
