// Live preview of detections for the thresholds editor: the camera's newest detections
// (GET /api/cameras/{id}/detections/latest, before any per-class filter) drawn over the
// very frame they were found on, each box kept or dropped by the thresholds being
// edited, so the admin sees the effect before saving. Kept boxes are solid; dropped
// ones dashed grey; with a zone chosen, boxes whose ground point lies outside it are
// faint (no rule of that zone would see them).
import { svg } from './kit.js';
import { passes } from './thresholds.js';

const POLL_MS = 2000;

export const previewStrings = {
  vi: {
    'preview.title': 'Xem trước phát hiện',
    'preview.show': 'Hiện khung phát hiện trực tiếp',
    'preview.pause': 'Tạm dừng hình',
    'preview.resume': 'Tiếp tục',
    'preview.zone': 'Chỉ tính trong vùng',
    'preview.allPicture': 'Cả khung hình',
    'preview.summary': 'Giữ {kept} · bỏ {dropped} khung theo ngưỡng đang sửa{outside} — hình lúc {time}',
    'preview.outside': ' · ngoài vùng {n}',
    'preview.legend': 'Nét liền: được giữ · nét đứt xám: bị ngưỡng loại · mờ: ngoài vùng đã chọn',
    'preview.waiting': 'Chưa có phát hiện: {message}',
    'preview.oldFrame': 'Hình đã bị thay: khung vẽ trên hình mới nhất, có thể lệch.',
  },
  en: {
    'preview.title': 'Detection preview',
    'preview.show': 'Show live detections',
    'preview.pause': 'Freeze picture',
    'preview.resume': 'Resume',
    'preview.zone': 'Count only inside zone',
    'preview.allPicture': 'Whole picture',
    'preview.summary': 'Kept {kept} · dropped {dropped} boxes by the thresholds being edited{outside} — frame at {time}',
    'preview.outside': ' · outside the zone {n}',
    'preview.legend': 'Solid: kept · dashed grey: dropped by a threshold · faint: outside the chosen zone',
    'preview.waiting': 'No detections yet: {message}',
    'preview.oldFrame': 'That frame was overwritten: boxes drawn on the newest picture, they may be off.',
  },
};

/** Ray casting: whether point p (normalised) lies inside the polygon. */
function inside([x, y], points) {
  let hit = false;
  for (let i = 0, j = points.length - 1; i < points.length; j = i, i += 1) {
    const [xi, yi] = points[i];
    const [xj, yj] = points[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}

/**
 * createPreview({api, t, h, fmtTime, signal, filters: () => {...}, zones: () => [...],
 *   onPicture(src|null), repaint()}) → {el, underlay(size), setCamera(id), refresh()}.
 * onPicture(src) asks the stage to show the detections' frame (null: back to the live
 * picture); repaint() asks it to redraw (underlay draws the boxes).
 */
export function createPreview({ api, t, h, fmtTime, signal, filters, zones, onPicture, repaint }) {
  let camera = null;
  let data = null;
  let timer = null;
  let paused = false;
  let shownSeq = null;

  const show = h('input', { type: 'checkbox', name: 'preview-show' });
  const pause = h('button', { type: 'button', disabled: true, 'data-testid': 'preview-pause' }, t('preview.pause'));
  const zone = h('select', { name: 'preview-zone' });
  const summary = h('p', { class: 'muted', role: 'status', 'data-testid': 'preview-summary' });
  const el = h('div', { class: 'card preview' }, h('h2', {}, t('preview.title')),
    h('div', { class: 'toolbar' }, h('label', { class: 'inline' }, show, t('preview.show')), pause,
      h('label', {}, t('preview.zone'), zone)),
    summary, h('p', { class: 'hint' }, t('preview.legend')));

  function fillZones() {
    const chosen = zone.value;
    zone.replaceChildren(h('option', { value: '' }, t('preview.allPicture')),
      ...zones().map((z) => h('option', { value: z.name }, z.name)));
    zone.value = zones().some((z) => z.name === chosen) ? chosen : '';
  }

  /** Each detection with its fate under the thresholds as edited now. */
  function classified() {
    if (!data) return [];
    const focus = zones().find((z) => z.name === zone.value);
    const limits = filters();
    return data.detections.map((d) => {
      const ground = [(d.box[0] + d.box[2]) / 2, d.box[3]]; // where the rules test zones
      let fate = passes(limits, d) ? 'kept' : 'dropped';
      if (focus && !inside(ground, focus.points)) fate = 'outside';
      return { ...d, fate };
    });
  }

  function summarize() {
    if (!data) return;
    const boxes = classified();
    const count = (fate) => boxes.filter((b) => b.fate === fate).length;
    const outside = count('outside');
    summary.dataset.kept = count('kept');
    summary.dataset.dropped = count('dropped');
    summary.textContent = t('preview.summary', {
      kept: count('kept'), dropped: count('dropped'), time: fmtTime(data.capture_ts),
      outside: outside ? t('preview.outside', { n: outside }) : '',
    }) + (data.image ? '' : ` ${t('preview.oldFrame')}`);
  }

  function underlay(size) {
    if (!show.checked || !data) return [];
    const stroke = size.width / 320;
    return classified().flatMap((b) => {
      const [x1, y1, x2, y2] = b.box;
      const x = x1 * size.width;
      const y = y1 * size.height;
      return [
        svg('rect', {
          class: `det det-${b.fate}`, x, y, width: (x2 - x1) * size.width, height: (y2 - y1) * size.height,
          'stroke-width': stroke, dataset: { label: b.label, confidence: b.confidence },
        }),
        svg('text', { class: `det-label det-${b.fate}`, x: x + stroke, y: y - stroke * 1.5, 'font-size': size.width / 55 },
          `${t(`label.${b.label}`)} ${b.confidence.toFixed(2)}`),
      ];
    });
  }

  async function poll() {
    timer = null;
    if (!show.checked || paused || !camera || signal.aborted) return;
    try {
      data = await api.get(`/api/cameras/${encodeURIComponent(camera)}/detections/latest`, { signal, quiet: true });
      if (data.frame_seq !== shownSeq) {
        shownSeq = data.frame_seq;
        onPicture(data.image); // null: the frame is gone, the stage keeps the live picture
      }
      summarize();
      repaint();
    } catch (err) {
      if (err.name === 'AbortError') return;
      data = null;
      summary.textContent = t('preview.waiting', { message: err.message });
      repaint();
    }
    if (show.checked && !paused && !signal.aborted) timer = setTimeout(poll, POLL_MS);
  }

  function stop() {
    if (timer) clearTimeout(timer);
    timer = null;
  }

  show.addEventListener('change', () => {
    pause.disabled = !show.checked;
    stop();
    if (show.checked) {
      paused = false;
      pause.textContent = t('preview.pause');
      poll();
    } else {
      data = null;
      shownSeq = null;
      summary.textContent = '';
      onPicture(null);
      repaint();
    }
  }, { signal });
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = t(paused ? 'preview.resume' : 'preview.pause');
    stop();
    if (!paused) poll();
  }, { signal });
  zone.addEventListener('change', () => { summarize(); repaint(); }, { signal });
  signal.addEventListener('abort', stop);

  return {
    el,
    underlay,
    /** Another camera: its zones for the focus list; its detections on the next poll. */
    setCamera(id) {
      camera = id;
      paused = false;
      pause.textContent = t('preview.pause');
      data = null;
      shownSeq = null;
      summary.textContent = '';
      fillZones();
      stop();
      if (show.checked && !paused) poll();
    },
    /** The thresholds or zones changed: recount and redraw without asking the API. */
    refresh() {
      fillZones();
      summarize();
      repaint();
    },
  };
}
