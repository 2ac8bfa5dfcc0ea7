// Live alert feed over the WebSocket /api/alerts/ws (the session cookie goes with
// it). Newest first. A high-severity alert flashes, and beeps when the operator has
// switched sound on: browsers only allow audio after a user gesture, so the switch
// is a button, and the AudioContext it creates lives for the whole session.

const MAX_ITEMS = 200; // a shift's worth on screen; older ones are in search
const RECONNECT_MS = 3000;
let audio = null; // AudioContext, shared across visits of this page

function beep() {
  if (!audio) return;
  // Two short tones: recognisable over a control room's noise, never a long blare.
  for (const [start, freq] of [[0, 880], [0.25, 660]]) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = freq;
    gain.gain.value = 0.2;
    osc.connect(gain).connect(audio.destination);
    osc.start(audio.currentTime + start);
    osc.stop(audio.currentTime + start + 0.18);
  }
}

export default {
  id: 'alerts',
  route: '#/alerts',
  navKey: 'nav.alerts',
  roles: ['admin', 'operator', 'police', 'viewer'],
  strings: {
    vi: {
      'nav.alerts': 'Cảnh báo',
      'alerts.title': 'Cảnh báo trực tiếp',
      'alerts.connected': 'Đã kết nối',
      'alerts.disconnected': 'Mất kết nối, đang thử lại…',
      'alerts.soundOn': 'Bật âm thanh',
      'alerts.soundOff': 'Tắt âm thanh',
      'alerts.empty': 'Chưa có cảnh báo nào.',
      'alerts.item': '{type} · {camera}',
      'alerts.kind.opened': 'mới', 'alerts.kind.updated': 'cập nhật', 'alerts.kind.closed': 'kết thúc',
      'alerts.kind.review': 'xử lý', 'alerts.kind.recent': 'gần đây',
      'alerts.open': 'Mở',
    },
    en: {
      'nav.alerts': 'Alerts',
      'alerts.title': 'Live alerts',
      'alerts.connected': 'Connected',
      'alerts.disconnected': 'Disconnected, retrying…',
      'alerts.soundOn': 'Sound on',
      'alerts.soundOff': 'Sound off',
      'alerts.empty': 'No alerts yet.',
      'alerts.item': '{type} · {camera}',
      'alerts.kind.opened': 'new', 'alerts.kind.updated': 'updated', 'alerts.kind.closed': 'ended',
      'alerts.kind.review': 'review', 'alerts.kind.recent': 'recent',
      'alerts.open': 'Open',
    },
  },
  async render(root, { api, t, h, clear, fmtTime, navigate, signal }) {
    const conn = h('span', { class: 'conn down', 'data-testid': 'conn' }, t('alerts.disconnected'));
    const sound = h('button', { type: 'button', 'aria-pressed': String(Boolean(audio)) });
    const setSoundLabel = () => {
      sound.textContent = audio ? t('alerts.soundOff') : t('alerts.soundOn');
      sound.setAttribute('aria-pressed', String(Boolean(audio)));
    };
    sound.addEventListener('click', async () => {
      if (audio) {
        await audio.close();
        audio = null;
      } else {
        audio = new AudioContext(); // created inside the click: allowed to play
        await audio.resume();
        beep(); // the operator hears what an alert will sound like
      }
      setSoundLabel();
    }, { signal });
    setSoundLabel();
    const feed = h('ol', { class: 'feed', 'data-testid': 'feed' });
    const empty = h('p', { class: 'empty' }, t('alerts.empty'));
    root.append(h('div', { class: 'toolbar' }, h('h1', {}, t('alerts.title')), conn, sound), empty, feed);

    const items = new Map(); // incident id → <li>
    function show(incident, kind, live) {
      const old = items.get(incident.id);
      const li = h('li', {
        class: `sev-${incident.severity}`,
        dataset: { incident: incident.id, kind, severity: incident.severity, live: live ? '1' : '0' },
      },
      h('span', { class: 'when' }, fmtTime(incident.start_ts)),
      h('span', { class: `badge ${incident.severity}` }, t(`severity.${incident.severity}`)),
      h('span', { class: 'what' },
        t('alerts.item', { type: t(`type.${incident.type}`), camera: names.get(incident.camera_id) || incident.camera_id }),
        incident.zone ? ` · ${incident.zone}` : '',
        h('span', { class: 'muted' }, ` (${t(`alerts.kind.${kind}`)})`)),
      h('span', { class: `badge ${incident.status}` }, t(`status.${incident.status}`)),
      h('button', { type: 'button', onclick: () => navigate(`#/review?id=${encodeURIComponent(incident.id)}`) },
        t('alerts.open')));
      items.set(incident.id, li);
      if (old) old.remove();
      // Ordered by start, newest first: ids begin with their start time in hex, so a
      // new alert lands on top and a late update of an old one stays in its place.
      const after = [...feed.children].find((other) => other.dataset.incident < incident.id);
      feed.insertBefore(li, after || null);
      if (live && kind === 'opened' && incident.severity === 'high') {
        li.classList.add('flash');
        beep();
      }
      while (feed.children.length > MAX_ITEMS) {
        const last = feed.lastElementChild;
        items.delete(last.dataset.incident);
        last.remove();
      }
      empty.hidden = feed.children.length > 0;
    }

    // Names, not ids, for the operator ("Cổng Bắc", not "gate-north"). Loaded once: a
    // camera added later shows by id until the page is opened again.
    const names = new Map();
    for (const c of await api.get('/api/cameras', { signal, quiet: true }).catch(() => [])) {
      names.set(c.id, c.name || c.id);
    }
    // What happened before the page opened, so the feed is never blank on arrival.
    const recent = await api.get('/api/incidents', { params: { limit: 20, sort: 'newest' }, signal });
    for (const incident of recent.items.slice().reverse()) show(incident, 'recent', false);

    let socket = null;
    let lastId = null; // resume point: a reconnect replays what was missed
    let retry = null;
    function connect() {
      if (signal.aborted) return;
      socket = new WebSocket(api.wsUrl('/api/alerts/ws', { last_id: lastId }));
      socket.onopen = () => {
        conn.className = 'conn up';
        conn.textContent = t('alerts.connected');
      };
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (!message || !message.incident || !message.incident.id) return;
        lastId = message.id;
        show(message.incident, message.kind, true);
      };
      socket.onclose = (event) => {
        conn.className = 'conn down';
        conn.textContent = t('alerts.disconnected');
        if (event.code === 4401) {
          // Session expired: asking who we are gets the 401 that sends the shell to login.
          api.get('/api/auth/me', { quiet: true }).catch(() => {});
          return;
        }
        if (!signal.aborted) retry = setTimeout(connect, RECONNECT_MS);
      };
    }
    connect();
    return () => {
      clearTimeout(retry);
      if (socket) {
        socket.onclose = null;
        socket.close();
      }
      clear(feed);
    };
  },
};
