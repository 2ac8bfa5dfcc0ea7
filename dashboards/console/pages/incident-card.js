// One incident for review: snapshot, clip, facts, review actions, notes, audit trail.
// A component, not a page (not in pages/index.js); its strings ride on review.js.
// Buttons follow the API's rules so nobody clicks what would be refused: MEDIA roles
// acknowledge and write notes, REVIEW roles decide, lock evidence and export.

const MEDIA = ['admin', 'operator', 'police'];
const REVIEW = ['admin', 'police'];
// Mirrors core/storage/review.py TRANSITIONS: action → statuses it may start from.
const FROM = {
  acknowledge: ['new'],
  confirm: ['new', 'acknowledged', 'false_alarm'],
  'false-alarm': ['new', 'acknowledged', 'confirmed'],
  close: ['confirmed', 'false_alarm'],
};
export const CATEGORIES = [
  'shadow', 'animal', 'weather', 'vehicle_misclassified', 'person_misclassified',
  'reflection', 'camera_moved', 'other',
];
const CLIP_RETRY_MS = 5000; // an open incident's footage lands in 10 s segments

/**
 * renderCard(root, incident, ctx, onChange): fills root; onChange(incident) after a
 * successful action so the page can refresh its list.
 */
export function renderCard(root, incident, ctx, onChange) {
  const { api, t, h, clear, fmtTime, me, signal, toast } = ctx;
  const base = `/api/incidents/${encodeURIComponent(incident.id)}`;
  const can = (roles) => roles.includes(me.role);

  async function act(run, done) {
    try {
      const updated = await run();
      const fresh = updated && updated.camera_id ? updated : await api.get(base, { signal });
      toast(typeof done === 'function' ? done(fresh) : done);
      renderCard(root, fresh, ctx, onChange);
      onChange(fresh);
    } catch (err) {
      if (err.name !== 'AbortError') console.warn(err.message); // api.js has shown it
    }
  }
  const review = (action, body = {}) =>
    act(() => api.post(`${base}/${action}`, { expected_status: incident.status, ...body }),
      (fresh) => t('review.done', { status: t(`status.${fresh.status}`) }));

  // Media ------------------------------------------------------------------------
  const snapshot = incident.snapshot_url
    ? h('img', { src: incident.snapshot_url, alt: t('review.snapshot'), 'data-testid': 'snapshot' })
    : h('p', { class: 'empty' }, t('review.noSnapshot'));
  let clip = h('p', { class: 'empty' }, t('review.clipForbidden'));
  if (can(MEDIA)) {
    const clipStatus = h('p', { class: 'muted', hidden: true });
    const video = h('video', {
      controls: true, muted: true, preload: 'auto', playsInline: true, 'data-testid': 'clip',
      src: `${base}/clip.mp4`,
    });
    let retries = 0;
    video.addEventListener('error', () => {
      // 425/404 while post-roll is still being recorded: say so and try again.
      clipStatus.hidden = false;
      clipStatus.textContent = t('review.clipNotReady');
      if (retries++ < 24 && !signal.aborted) {
        setTimeout(() => { if (!signal.aborted) video.src = `${base}/clip.mp4?r=${retries}`; }, CLIP_RETRY_MS);
      }
    }, { signal });
    video.addEventListener('loadeddata', () => { clipStatus.hidden = true; }, { signal });
    clip = h('div', {}, video, clipStatus);
  }

  // Facts ------------------------------------------------------------------------
  const fact = (key, value) => [h('dt', {}, t(key)), h('dd', {}, value)];
  const facts = h('dl', { class: 'facts' },
    fact('review.camera', incident.camera_id),
    fact('review.rule', `${incident.rule} (${t(`type.${incident.type}`)})`),
    fact('review.zone', incident.zone || t('app.none')),
    fact('review.score', incident.peak_score.toFixed(2)),
    fact('review.labels', incident.labels.map((l) => t(`label.${l}`)).join(', ') || t('app.none')),
    fact('review.start', fmtTime(incident.start_ts)),
    fact('review.end', incident.end_ts ? fmtTime(incident.end_ts) : t('review.ongoing')),
    fact('review.assignee', incident.assignee || t('app.none')),
    fact('review.evidence', incident.evidence_locked ? t('review.locked') : t('review.unlocked')),
    incident.false_alarm_category
      ? fact('review.category', t(`category.${incident.false_alarm_category}`)) : null);

  // Actions ----------------------------------------------------------------------
  const button = (label, onclick, opts = {}) =>
    h('button', { type: 'button', onclick, ...opts }, label);
  const allowedFrom = (action) => FROM[action].includes(incident.status);
  const actions = h('div', { class: 'actions' });
  if (can(MEDIA)) {
    actions.append(button(t('review.acknowledge'), () => review('acknowledge'),
      { disabled: !allowedFrom('acknowledge'), dataset: { action: 'acknowledge' } }));
  }
  if (can(REVIEW)) {
    const category = h('select', { 'aria-label': t('review.category'), dataset: { field: 'category' } },
      CATEGORIES.map((c) => h('option', { value: c }, t(`category.${c}`))));
    const assignee = h('input', {
      value: incident.assignee || '', placeholder: t('review.username'),
      'aria-label': t('review.assignee'), dataset: { field: 'assignee' },
    });
    const lockAction = incident.evidence_locked
      ? () => act(() => api.del(`${base}/evidence-lock`), t('review.unlockedDone'))
      : () => act(() => api.put(`${base}/evidence-lock`), t('review.lockedDone'));
    actions.append(
      button(t('review.confirm'), () => review('confirm'),
        { class: 'primary', disabled: !allowedFrom('confirm'), dataset: { action: 'confirm' } }),
      h('span', { class: 'actions' }, category,
        button(t('review.falseAlarm'), () => review('false-alarm', { category: category.value }),
          { class: 'danger', disabled: !allowedFrom('false-alarm'), dataset: { action: 'false-alarm' } })),
      button(t('review.close'), () => review('close'),
        { disabled: !allowedFrom('close'), dataset: { action: 'close' } }),
      h('span', { class: 'actions' }, assignee,
        button(t('review.assign'),
          () => act(() => api.put(`${base}/assignee`, { assignee: assignee.value.trim() || null }), t('review.assigned')),
          { dataset: { action: 'assign' } }),
        button(t('review.assignMe'),
          () => act(() => api.put(`${base}/assignee`, { assignee: me.username }), t('review.assigned')),
          { disabled: !me.username })),
      button(incident.evidence_locked ? t('review.unlock') : t('review.lock'), lockAction,
        { dataset: { action: 'lock' } }),
      h('a', { href: `${base}/evidence.zip`, download: `evidence-${incident.id}.zip`, 'data-testid': 'export' },
        t('review.export')));
  }

  // Notes and history ------------------------------------------------------------
  const notes = h('ul', { class: 'history', 'data-testid': 'notes' });
  const history = h('ul', { class: 'history', 'data-testid': 'history' });
  const noteBox = h('section', {});
  if (can(MEDIA)) {
    const text = h('textarea', { rows: 2, maxlength: 4000, 'aria-label': t('review.note') });
    noteBox.append(h('h2', {}, t('review.notes')), notes,
      h('div', { class: 'actions' }, text, button(t('review.addNote'), () => {
        if (!text.value.trim()) return;
        // POST /notes answers the note, not the incident: act() re-reads the incident.
        act(() => api.post(`${base}/notes`, { text: text.value.trim() }), t('review.noteAdded'));
      }, { dataset: { action: 'note' } })));
    loadTrail();
  }

  async function loadTrail() {
    try {
      const [noteList, entries] = await Promise.all([
        api.get(`${base}/notes`, { signal }), api.get(`${base}/history`, { signal })]);
      clear(notes, noteList.length ? noteList.map((n) => h('li', {},
        h('span', { class: 'muted' }, `${fmtTime(n.ts)} · ${n.author}: `), n.text))
        : h('li', { class: 'muted' }, t('app.none')));
      clear(history, entries.length ? entries.map((e) => h('li', {},
        h('span', { class: 'muted' }, `${fmtTime(e.ts)} · ${e.actor} · `),
        t('review.change', { action: e.action, before: describe(e.before), after: describe(e.after) })))
        : h('li', { class: 'muted' }, t('review.noHistory')));
    } catch (err) {
      if (err.name !== 'AbortError') console.warn(err.message);
    }
  }

  clear(root, h('article', { class: 'card', dataset: { incident: incident.id, status: incident.status } },
    h('div', { class: 'toolbar' },
      h('h2', {}, `${t(`type.${incident.type}`)} · ${incident.camera_id}`),
      h('span', { class: `badge ${incident.status}`, 'data-testid': 'status' }, t(`status.${incident.status}`)),
      h('span', { class: `badge ${incident.severity}` }, t(`severity.${incident.severity}`))),
    h('div', { class: 'media' }, snapshot, clip),
    facts, actions, noteBox,
    can(MEDIA) ? h('section', {}, h('h2', {}, t('review.history')), history) : null));
}

/** {status: 'new'} → 'status=new'; the audit trail's before/after, short. */
function describe(fields) {
  if (!fields) return '–';
  return Object.entries(fields).map(([k, v]) => `${k}=${v === null ? '–' : v}`).join(', ') || '–';
}
