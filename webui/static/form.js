// form.js: forms that check their fields before sending and show the
// server's refusal next to the field it names ([data-test=error-<field>])
// or above the form ([data-test=form-error]).

import { h, fieldError, clearErrors, fieldName } from './dom.js';

let idSeq = 0;

// field wraps input with its label (and an optional hint) in a .field.
export function field(label, input, opts = {}) {
  if (!input.id) input.id = `f-${fieldName(input)}-${++idSeq}`;
  return h('div', { class: ['field', opts.class] },
    h('label', { for: input.id }, label, input.required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null),
    input,
    opts.hint ? h('div', { class: 'hint' }, opts.hint) : null);
}

// checkField checks one input and returns the message of what is wrong
// with it, or '' when it is fine.
export function checkField(input) {
  if (input.disabled || input.type === 'file' || input.type === 'button' || input.type === 'submit') return '';
  if (input.type === 'checkbox' || input.type === 'radio') return '';
  const raw = input.value;
  const value = typeof raw === 'string' ? raw.trim() : raw;
  if (input.required && value === '') return 'Required.';
  if (value === '') return '';
  if (input.type === 'number' || input.dataset.type === 'int' || input.dataset.type === 'number') {
    const n = Number(value);
    const min = input.getAttribute('min');
    const max = input.getAttribute('max');
    const whole = input.dataset.type !== 'number' && input.getAttribute('step') !== 'any';
    const range = min !== null && max !== null ? ` from ${min} to ${max}` : min !== null ? ` of at least ${min}` : max !== null ? ` of at most ${max}` : '';
    const what = whole ? 'a whole number' : 'a number';
    if (!Number.isFinite(n) || (whole && !Number.isInteger(n))) return `Enter ${what}${range}.`;
    if ((min !== null && n < Number(min)) || (max !== null && n > Number(max))) return `Enter ${what}${range}.`;
  }
  const pattern = input.getAttribute('pattern');
  if (pattern && !new RegExp(`^(?:${pattern})$`).test(value)) return input.dataset.patternMessage || 'This value has the wrong form.';
  const maxLen = input.getAttribute('maxlength');
  if (maxLen !== null && value.length > Number(maxLen)) return `At most ${maxLen} characters.`;
  return '';
}

// validate checks the inputs (default: every field of form), shows each
// problem next to its field, focuses the first and tells whether all pass.
export function validate(form, inputs) {
  const list = inputs || Array.from(form.elements).filter((el) => /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName));
  let first = null;
  for (const input of list) {
    if (input.dataset.novalidate !== undefined) continue;
    const msg = checkField(input);
    fieldError(input, msg);
    if (msg && !first) first = input;
  }
  if (first) first.focus();
  return first === null;
}

// formError shows message as the form-wide error (or hides it when empty).
export function formError(form, message) {
  let el = form.querySelector('[data-test=form-error]');
  if (!el) {
    el = h('div', { class: 'form-error', 'data-test': 'form-error', role: 'alert' });
    form.prepend(el);
  }
  el.textContent = message || '';
  el.hidden = !message;
  return el;
}

// showError puts an error next to the field it names (err.field, or
// fieldFor(err)), else above the form.
export function showError(form, err, fieldFor) {
  const name = err && (err.field || (fieldFor ? fieldFor(err) : null));
  const message = (err && err.message) || String(err);
  if (name) {
    const input = form.querySelector(`[name="${CSS.escape(name)}"]`) || form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (input) {
      fieldError(input, message);
      input.focus();
      return;
    }
  }
  formError(form, message);
}

// values reads the named fields: checkboxes as booleans, number inputs as
// numbers (or null when empty), the rest as trimmed strings.
export function values(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === 'checkbox') out[el.name] = el.checked;
    else if (el.type === 'file') out[el.name] = el.files;
    else if (el.type === 'number' || el.dataset.type === 'int') out[el.name] = el.value.trim() === '' ? null : Number(el.value);
    else if (el.tagName === 'TEXTAREA') out[el.name] = el.value;
    else out[el.name] = el.value.trim();
  }
  return out;
}

// onSubmit makes form check its fields and then run action(values, form);
// a thrown error is shown next to its field or as the form error. While it
// runs the submit buttons are disabled. opts.fieldFor(err) names the field
// a server error belongs to.
export function onSubmit(form, action, opts = {}) {
  form.setAttribute('novalidate', '');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (form.dataset.busy) return;
    clearErrors(form);
    if (!validate(form, opts.fields)) return;
    form.dataset.busy = '1';
    const buttons = form.querySelectorAll('button[type=submit]');
    for (const b of buttons) b.disabled = true;
    try {
      await action(values(form), form);
    } catch (e) {
      if (!(e && e.name === 'ApiError')) console.error(e);
      showError(form, e, opts.fieldFor);
    } finally {
      delete form.dataset.busy;
      for (const b of buttons) b.disabled = false;
    }
  });
  return form;
}

export { clearErrors, fieldError };
