// Drawing surface of the zones and replay pages: the camera's picture with an SVG overlay
// where zones (polygons) and lines (two points) are drawn with the mouse, and the corners
// of the selected shape are dragged (pointer events: mouse, touch and pen alike) or
// deleted (right-click / long-press menu, the Delete key, or the page's button).
// Coordinates are normalised 0..1 to the picture's width and height, as CameraConfig
// stores them.
import { svg } from './kit.js';

const CLOSE_PX = 12; // a click this close to the first corner closes the polygon
const SAME_PX = 4; // a click this close to the last corner is the double-click's echo
const HANDLE_PX = 8; // corner handles' radius on screen: big enough for a finger's edge
const PLACEHOLDER = { width: 1600, height: 900 }; // 16:9, most CCTV streams

const round = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;

/**
 * createEditor({h, t, onDrawn(kind, points), onSelect(kind, index), onModeChange(mode, n),
 *   onEdit(kind, index), onNotice(key), underlay(size)}) → {el, setPicture, draw, start(kind),
 *   finish(), cancel(), drawing(), deleteCorner(), corner(), repaint(), size()}.
 * `draw(zones, lines, selected)` repaints; dragging or deleting a corner changes those
 * arrays in place and then calls onEdit. `underlay(size)` returns SVG nodes drawn under
 * the shapes (the detection preview's boxes), in picture pixels.
 */
export function createEditor({
  h, t, onDrawn, onSelect, onModeChange, onEdit = () => {}, onNotice = () => {}, underlay = null,
}) {
  let size = { ...PLACEHOLDER };
  let mode = null; // null | 'zone' | 'line'
  let draft = [];
  let cursor = null;
  let shapes = { zones: [], lines: [], selected: null };
  let corner = null; // {kind, index, vertex}: the corner picked for dragging or deleting
  let drag = null; // {pointerId, kind, index, vertex} while a corner follows the pointer

  const img = h('img', { class: 'stage-picture', alt: '', hidden: true });
  const placeholder = h('div', { class: 'stage-placeholder' }, t('zones.noPicture'));
  const overlay = svg('svg', { class: 'stage-overlay', 'data-testid': 'zone-canvas', preserveAspectRatio: 'none' });
  const el = h('div', { class: 'stage' }, img, placeholder, overlay);

  const px = (p) => [p[0] * size.width, p[1] * size.height];
  // Picture px per screen px (1 before the overlay is laid out, rather than Infinity).
  const scale = () => size.width / (overlay.getBoundingClientRect().width || size.width);
  function toPoint(event) {
    const box = overlay.getBoundingClientRect();
    return [round((event.clientX - box.left) / box.width), round((event.clientY - box.top) / box.height)];
  }
  function screenDistance(a, b) {
    const [ax, ay] = px(a);
    const [bx, by] = px(b);
    return Math.hypot(ax - bx, ay - by) / scale();
  }

  function label(text, [x, y]) {
    // Just above the point, so the label does not hide the corner it names.
    return svg('text', { class: 'shape-label', x, y: y - size.width / 100, 'text-anchor': 'middle', 'font-size': size.width / 45 }, text);
  }

  /** An arrow from the line's middle towards the side crossings into which count as "in":
   * the right-hand side walking from A to B (LineConfig; y points down on screen). */
  function inArrow([ax, ay], [bx, by], r) {
    const length = Math.hypot(bx - ax, by - ay) || 1;
    const [nx, ny] = [-(by - ay) / length, (bx - ax) / length];
    const [mx, my] = [(ax + bx) / 2, (ay + by) / 2];
    const reach = size.width / 25;
    const [tx, ty] = [mx + nx * reach, my + ny * reach];
    const [ux, uy] = [(bx - ax) / length, (by - ay) / length]; // along the line, for the head's base
    const head = `${tx + nx * r * 3},${ty + ny * r * 3} ${tx + ux * r * 2},${ty + uy * r * 2} ${tx - ux * r * 2},${ty - uy * r * 2}`;
    return [
      svg('line', { class: 'in-arrow', x1: mx, y1: my, x2: tx, y2: ty, 'stroke-width': r / 1.5 }),
      svg('polygon', { class: 'in-arrow', points: head }),
      label(t('zones.in'), [tx + nx * r * 8, ty + ny * r * 8 + r * 2]),
    ];
  }

  function paint() {
    overlay.setAttribute('viewBox', `0 0 ${size.width} ${size.height}`);
    const r = size.width / 250;
    const nodes = underlay ? [...underlay(size)] : [];
    shapes.zones.forEach((z, i) => {
      const selected = shapes.selected && shapes.selected.kind === 'zone' && shapes.selected.index === i;
      const corners = z.points.map(px);
      const centre = corners.reduce(([sx, sy], [x, y]) => [sx + x / corners.length, sy + y / corners.length], [0, 0]);
      nodes.push(svg('polygon', {
        class: `zone${selected ? ' selected' : ''}`, points: corners.map((c) => c.join(',')).join(' '),
        dataset: { name: z.name },
        onclick: (event) => { if (!mode) { event.stopPropagation(); onSelect('zone', i); } },
      }), label(z.name, centre));
    });
    shapes.lines.forEach((ln, i) => {
      const selected = shapes.selected && shapes.selected.kind === 'line' && shapes.selected.index === i;
      const [a, b] = ln.points.map(px);
      nodes.push(svg('line', {
        class: `tripwire${selected ? ' selected' : ''}`, x1: a[0], y1: a[1], x2: b[0], y2: b[1],
        'stroke-width': r, dataset: { name: ln.name },
        onclick: (event) => { if (!mode) { event.stopPropagation(); onSelect('line', i); } },
      }), label(`${ln.name} A`, a), label('B', b), ...inArrow(a, b, r));
    });
    if (draft.length) {
      const corners = draft.map(px);
      const path = cursor ? [...corners, px(cursor)] : corners;
      nodes.push(svg('polyline', { class: 'draft', points: path.map((c) => c.join(',')).join(' '), 'stroke-width': r / 2 }));
      corners.forEach(([x, y]) => nodes.push(svg('circle', { class: 'draft-corner', cx: x, cy: y, r })));
    }
    if (!mode) nodes.push(...handles());
    overlay.replaceChildren(...nodes);
  }

  function selectedShape() {
    const sel = shapes.selected;
    if (!sel) return null;
    const shape = (sel.kind === 'zone' ? shapes.zones : shapes.lines)[sel.index];
    return shape ? { ...sel, shape } : null;
  }

  /** Corner handles of the selected shape, and for a zone a smaller handle in the middle
   * of each edge: dragging that one inserts a corner there. */
  function handles() {
    const sel = selectedShape();
    if (!sel) return [];
    const hr = HANDLE_PX * scale();
    const { kind, index, shape } = sel;
    const out = [];
    if (kind === 'zone') {
      shape.points.forEach((p, v) => {
        const q = shape.points[(v + 1) % shape.points.length];
        const [x, y] = px([(p[0] + q[0]) / 2, (p[1] + q[1]) / 2]);
        out.push(svg('circle', {
          class: 'handle-mid', cx: x, cy: y, r: hr * 0.7, dataset: { after: v },
          onpointerdown: (event) => {
            shape.points.splice(v + 1, 0, toPoint(event));
            grab(event, kind, index, v + 1);
          },
          ontouchstart: noPan,
        }));
      });
    }
    shape.points.forEach((p, v) => {
      const [x, y] = px(p);
      const active = corner && corner.kind === kind && corner.index === index && corner.vertex === v;
      out.push(svg('circle', {
        class: `handle${active ? ' active' : ''}`, cx: x, cy: y, r: hr, dataset: { vertex: v },
        onpointerdown: (event) => grab(event, kind, index, v),
        ontouchstart: noPan,
        oncontextmenu: (event) => {
          event.preventDefault(); // the browser's menu; a long press on touch screens too
          corner = { kind, index, vertex: v };
          deleteCorner();
        },
      }));
    });
    return out;
  }

  // A finger on a handle drags the corner; without this the browser takes the touch as
  // a page scroll and cancels the drag (SVG shapes do not honour CSS touch-action).
  // Only on the handles: a touch anywhere else on the picture still scrolls the page.
  function noPan(event) {
    event.preventDefault();
  }

  function grab(event, kind, index, vertex) {
    if (event.button !== undefined && event.button !== 0) return; // right button: the menu
    event.preventDefault();
    event.stopPropagation();
    corner = { kind, index, vertex };
    drag = { pointerId: event.pointerId, kind, index, vertex };
    // Captured on the overlay, which stays while paint() replaces the handles under it.
    overlay.setPointerCapture(event.pointerId);
    el.classList.add('dragging');
    paint();
  }

  function release(event) {
    if (!drag || event.pointerId !== drag.pointerId) return;
    const { kind, index } = drag;
    drag = null;
    el.classList.remove('dragging');
    if (overlay.hasPointerCapture(event.pointerId)) overlay.releasePointerCapture(event.pointerId);
    onEdit(kind, index);
  }

  /** Delete the picked corner; a zone keeps at least 3 and a line its 2. */
  function deleteCorner() {
    const sel = selectedShape();
    if (!corner || !sel || sel.kind !== corner.kind || sel.index !== corner.index) {
      onNotice('zones.pickCorner');
      return false;
    }
    const min = corner.kind === 'zone' ? 3 : 2;
    if (sel.shape.points.length <= min) {
      onNotice(corner.kind === 'zone' ? 'zones.minCorners' : 'zones.lineCorners');
      return false;
    }
    sel.shape.points.splice(corner.vertex, 1);
    const { kind, index } = corner;
    corner = null;
    paint();
    onEdit(kind, index);
    return true;
  }

  function finish() {
    if (mode === 'zone' && draft.length >= 3) onDrawn('zone', draft);
    else if (mode === 'line' && draft.length === 2) onDrawn('line', draft);
    else return false;
    cancel();
    return true;
  }

  function cancel() {
    mode = null;
    draft = [];
    cursor = null;
    el.classList.remove('drawing');
    paint();
    onModeChange(null, 0);
  }

  overlay.addEventListener('click', (event) => {
    if (!mode) return;
    const point = toPoint(event);
    const last = draft[draft.length - 1];
    if (last && screenDistance(point, last) < SAME_PX) return;
    if (mode === 'zone' && draft.length >= 3 && screenDistance(point, draft[0]) < CLOSE_PX) {
      finish();
      return;
    }
    draft.push(point);
    if (mode === 'line' && draft.length === 2) {
      finish();
      return;
    }
    paint();
    onModeChange(mode, draft.length);
  });
  overlay.addEventListener('dblclick', (event) => {
    event.preventDefault();
    if (mode === 'zone') finish();
  });
  overlay.addEventListener('mousemove', (event) => {
    if (!mode || !draft.length) return;
    cursor = toPoint(event);
    paint();
  });
  overlay.addEventListener('pointermove', (event) => {
    if (!drag || event.pointerId !== drag.pointerId) return;
    const sel = selectedShape();
    if (!sel) return;
    const point = toPoint(event);
    const points = sel.shape.points;
    // A line whose two ends meet is invalid (LineConfig): keep the last good spot.
    if (sel.kind === 'line' && points[1 - drag.vertex].every((c, k) => c === point[k])) return;
    points[drag.vertex] = point;
    paint();
  });
  overlay.addEventListener('pointerup', release);
  overlay.addEventListener('pointercancel', release);

  return {
    el,
    /** Load the camera's live picture; a placeholder of the same 16:9 shape if there is none. */
    setPicture(src) {
      img.onload = () => {
        size = { width: img.naturalWidth, height: img.naturalHeight };
        img.hidden = false;
        placeholder.hidden = true;
        paint();
      };
      img.onerror = () => {
        size = { ...PLACEHOLDER };
        img.hidden = true;
        placeholder.hidden = false;
        paint();
      };
      img.src = src;
    },
    draw(zones, lines, selected) {
      const same = selected && shapes.selected && selected.kind === shapes.selected.kind
        && selected.index === shapes.selected.index;
      if (!same) corner = null; // another shape: its corners are not the picked one's
      shapes = { zones, lines, selected };
      paint();
    },
    deleteCorner,
    corner: () => corner,
    repaint: paint,
    size: () => size,
    start(kind) {
      corner = null;
      mode = kind;
      draft = [];
      cursor = null;
      el.classList.add('drawing');
      paint();
      onModeChange(kind, 0);
    },
    finish,
    cancel,
    drawing: () => mode,
  };
}
