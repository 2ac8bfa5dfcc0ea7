// Live wall: one tile per camera with its latest frame (~1 fps) and health badge.
// Frames come from GET /api/cameras/{id}/snapshot.jpg, not live.mjpeg: a browser holds
// at most 6 HTTP/1.1 connections per host, so 29 endless MJPEG streams would starve
// every other request of the console. When a snapshot answers an error (camera
// offline: 503, unknown: 404) the tile shows a placeholder and retries slowly, so a
// dead camera costs one request per 10 s, not one per second.

const FRAME_MS = 1000;
const RETRY_MS = 10000;
const HEALTH_MS = 5000;
const GAP = 8; // px, as .wall's gap in style.css
const MIN_TILE = 180; // px wide; below this a picture says little: scroll instead

export default {
  id: 'wall',
  route: '#/wall',
  navKey: 'nav.wall',
  roles: ['admin', 'operator', 'police', 'viewer'],
  strings: {
    vi: {
      'nav.wall': 'Màn hình camera',
      'wall.title': 'Màn hình camera trực tiếp',
      'wall.fullscreen': 'Toàn màn hình',
      'wall.noFrame': 'Không có hình',
      'wall.noCameras': 'Chưa có camera nào.',
      'wall.count': '{online}/{total} camera trực tuyến',
    },
    en: {
      'nav.wall': 'Live wall',
      'wall.title': 'Live camera wall',
      'wall.fullscreen': 'Fullscreen',
      'wall.noFrame': 'No picture',
      'wall.noCameras': 'No cameras yet.',
      'wall.count': '{online}/{total} cameras online',
    },
  },
  async render(root, { api, t, h, signal }) {
    const count = h('span', { class: 'muted' });
    const grid = h('div', { class: 'wall', 'data-testid': 'wall' });
    const fullscreen = h('button', {
      type: 'button',
      onclick: () => (document.fullscreenElement ? document.exitFullscreen() : grid.requestFullscreen()),
    }, t('wall.fullscreen'));
    root.append(h('div', { class: 'toolbar' }, h('h1', {}, t('wall.title')), count, fullscreen), grid);

    const tiles = new Map(); // camera id → {tile, badge, img, placeholder, timer}
    const timers = new Set();
    const later = (fn, ms) => {
      const id = setTimeout(() => { timers.delete(id); if (!signal.aborted) fn(); }, ms);
      timers.add(id);
    };

    function loadFrame(cameraId) {
      const entry = tiles.get(cameraId);
      if (!entry || signal.aborted) return;
      // Load off-screen, then swap: the visible frame never goes blank between frames.
      const next = new Image();
      next.onload = () => {
        entry.img.src = next.src;
        entry.img.hidden = false;
        entry.placeholder.hidden = true;
        later(() => loadFrame(cameraId), FRAME_MS);
      };
      next.onerror = () => {
        entry.img.hidden = true;
        entry.placeholder.hidden = false;
        later(() => loadFrame(cameraId), RETRY_MS);
      };
      // Ask for the tile's size (in device pixels, in steps of 160 so it rarely
      // changes): the server downscales, the LAN carries less.
      const px = entry.tile.clientWidth * (window.devicePixelRatio || 1);
      const width = Math.min(1920, Math.max(160, Math.ceil(px / 160) * 160));
      next.src = api.url(`/api/cameras/${encodeURIComponent(cameraId)}/snapshot.jpg`, { width, t: Date.now() });
    }

    function tileFor(camera) {
      const img = h('img', { alt: camera.name || camera.id, hidden: true });
      const placeholder = h('div', { class: 'placeholder' }, t('wall.noFrame'));
      const badge = h('span', { class: 'badge', 'data-testid': 'health' });
      const tile = h('figure', { class: 'tile', dataset: { camera: camera.id } },
        img, placeholder, badge,
        h('figcaption', { class: 'caption' }, h('span', { class: 'name' }, camera.name || camera.id)));
      return { tile, img, placeholder, badge };
    }

    // The largest tiles that still put every camera on screen (a wall is for watching
    // all of them at once); with too many cameras for that, fixed-width columns that
    // scroll down, never sideways.
    function fit() {
      const n = tiles.size;
      const full = document.fullscreenElement === grid;
      const width = grid.clientWidth - (full ? 2 * GAP : 0);
      const top = full ? GAP : grid.getBoundingClientRect().top;
      const height = window.innerHeight - top - 2 * GAP;
      let columns = 0;
      for (let cols = 1; cols <= n; cols += 1) {
        const rows = Math.ceil(n / cols);
        const tileW = (width - GAP * (cols - 1)) / cols;
        if (tileW < MIN_TILE) break;
        if (rows * (tileW * 9) / 16 + GAP * (rows - 1) <= height) {
          columns = cols;
          break;
        }
      }
      grid.style.gridTemplateColumns = columns ? `repeat(${columns}, minmax(0, 1fr))` : '';
    }
    window.addEventListener('resize', fit, { signal });
    document.addEventListener('fullscreenchange', fit, { signal });

    async function refresh() {
      const cameras = await api.get('/api/cameras', { signal, quiet: tiles.size > 0 });
      let online = 0;
      for (const camera of cameras) {
        if (!tiles.has(camera.id)) {
          const entry = tileFor(camera);
          tiles.set(camera.id, entry);
          grid.append(entry.tile);
          loadFrame(camera.id);
        }
        const state = (camera.health && camera.health.state) || 'unknown';
        if (state === 'online') online += 1;
        const { badge } = tiles.get(camera.id);
        badge.className = `badge ${state}`;
        badge.dataset.state = state;
        badge.textContent = t(`health.${state}`);
      }
      for (const [id, entry] of tiles) {
        if (!cameras.some((c) => c.id === id)) {
          entry.tile.remove();
          tiles.delete(id);
        }
      }
      fit();
      count.textContent = t('wall.count', { online, total: cameras.length });
      const empty = grid.querySelector('.empty');
      if (cameras.length && empty) empty.remove();
      if (!cameras.length && !empty) grid.append(h('p', { class: 'empty' }, t('wall.noCameras')));
    }

    async function poll() {
      try {
        await refresh();
      } catch (err) {
        if (err.name === 'AbortError') return;
      }
      later(poll, HEALTH_MS);
    }
    await refresh();
    later(poll, HEALTH_MS);
    return () => {
      for (const id of timers) clearTimeout(id);
      if (document.fullscreenElement === grid) document.exitFullscreen();
    };
  },
};
