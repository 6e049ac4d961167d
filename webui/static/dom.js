// dom.js builds the DOM. Every element of the UI is made with h() or svg();
// text is only ever set as text nodes or textContent, so whatever a user or
// a device typed can never become markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Properties that must be set on the element rather than as attributes,
// after the children exist (a select's value needs its options).
const PROPS = new Set(['value', 'checked', 'selected', 'indeterminate']);

function applyAttrs(el, attrs, isSVG) {
  const props = [];
  for (const [key, val] of Object.entries(attrs || {})) {
    if (val === null || val === undefined || val === false) continue;
    if (key.startsWith('on') && typeof val === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), val);
    } else if (key === 'class') {
      const names = Array.isArray(val) ? val.filter(Boolean).join(' ') : String(val);
      if (names) el.setAttribute('class', names);
    } else if (!isSVG && PROPS.has(key)) {
      props.push([key, val]);
    } else {
      el.setAttribute(key, val === true ? '' : String(val));
    }
  }
  return props;
}

function appendChildren(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false || child === true) continue;
    if (Array.isArray(child)) {
      appendChildren(el, child);
    } else if (child instanceof Node) {
      el.appendChild(child);
    } else {
      el.appendChild(document.createTextNode(String(child)));
    }
  }
}

// h makes an HTML element. attrs: class (string or array), data-*, on<Event>
// (functions, added with addEventListener), value/checked/selected (set as
// properties), everything else with setAttribute (true means present; null,
// undefined and false are skipped). Children: nodes, strings and numbers
// (as text), arrays of them; null, undefined and booleans are skipped.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  const props = applyAttrs(el, attrs, false);
  appendChildren(el, children);
  for (const [key, val] of props) el[key] = val;
  return el;
}

// svg makes an SVG element in the SVG namespace, with the same rules as h.
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs, true);
  appendChildren(el, children);
  return el;
}

// clear removes every child of el and returns el.
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// fieldName is the name a field's error is known by: data-field, name or id.
export function fieldName(input) {
  return input.dataset.field || input.name || input.id || 'field';
}

let errorSeq = 0;

// fieldError shows message next to input as [data-test=error-<name>] (or
// removes it when message is empty) and marks the input invalid. name is
// the field's (default fieldName(input)); input may also be the element
// that holds a group of controls.
export function fieldError(input, message, name = fieldName(input)) {
  let err = null;
  const next = input.nextElementSibling;
  if (next && next.dataset.test === `error-${name}`) err = next;
  if (!message) {
    if (err) err.remove();
    input.removeAttribute('aria-invalid');
    input.removeAttribute('aria-describedby');
    return null;
  }
  if (!err) {
    errorSeq++;
    err = h('div', { class: 'field-error', 'data-test': `error-${name}`, id: `field-error-${errorSeq}`, role: 'alert' });
    input.after(err);
  }
  err.textContent = message;
  input.setAttribute('aria-invalid', 'true');
  input.setAttribute('aria-describedby', err.id);
  return err;
}

// clearErrors removes every field error and the form-wide error inside form.
export function clearErrors(form) {
  for (const el of form.querySelectorAll('.field-error')) el.remove();
  for (const el of form.querySelectorAll('[aria-invalid]')) {
    el.removeAttribute('aria-invalid');
    el.removeAttribute('aria-describedby');
  }
  for (const el of form.querySelectorAll('[data-test=form-error]')) {
    el.textContent = '';
    el.hidden = true;
  }
}

// Loading marks: #view carries data-loaded="1" only while nothing is being
// fetched or rendered. App renders and table page changes both go through
// track(), so a test that waits for data-loaded sees complete content.
let busyCount = 0;

function viewRoot() {
  return document.getElementById('view');
}

// track marks the view as loading until promise settles, and returns it.
export function track(promise) {
  busyCount++;
  const root = viewRoot();
  if (root) delete root.dataset.loaded;
  const done = () => {
    busyCount--;
    if (busyCount === 0) {
      const r = viewRoot();
      if (r) r.dataset.loaded = '1';
    }
  };
  promise.then(done, done);
  return promise;
}
