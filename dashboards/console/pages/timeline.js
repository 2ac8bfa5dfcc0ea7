// The footage page's SVG timeline: recorded ranges, gaps, incident markers, time axis
// and a playhead, for one window of GET /api/cameras/{id}/timeline.
import { svg } from './kit.js';

export const WIDTH = 1000; // viewBox units; the SVG stretches to the page width
const HEIGHT = 64;
const BAR_Y = 14;
const BAR_H = 28;
const VN_OFFSET_S = 7 * 3600; // ticks fall on round Vietnam times (UTC+7, no DST)
const STEPS_S = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600];

/** The smallest tick step that gives at most 8 ticks over the span. */
function tickStep(span) {
  return STEPS_S.find((s) => span / s <= 8) || STEPS_S[STEPS_S.length - 1];
}

/** Wall time of the recorded footage nearest to ts (ts itself when recorded), or null. */
export function snapToRecorded(ranges, ts) {
  let best = null;
  let bestDistance = Infinity;
  for (const r of ranges) {
    // Half a second before the end: the last frame of a range is still playable.
    const inside = Math.min(Math.max(ts, r.start_ts), Math.max(r.start_ts, r.end_ts - 0.5));
    const distance = Math.abs(inside - ts);
    if (distance < bestDistance) {
      best = inside;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * Draw the timeline of `data` (the /timeline answer) into a new <svg>.
 * onPick(ts) gets the wall time clicked (bar) or an incident's start (marker).
 * Returns {el, setPlayhead(ts|null)}.
 */
export function drawTimeline(data, { t, fmtTime, onPick }) {
  const since = data.since_ts;
  const span = data.until_ts - data.since_ts;
  const x = (ts) => ((ts - since) / span) * WIDTH;
  const playhead = svg('line', { class: 'tl-playhead', y1: 4, y2: BAR_Y + BAR_H + 4, visibility: 'hidden' });
  const el = svg('svg', {
    class: 'timeline', viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: 'img', 'aria-label': t('footage.timeline'), 'data-testid': 'timeline',
  });
  el.append(svg('rect', { class: 'tl-bg', x: 0, y: BAR_Y, width: WIDTH, height: BAR_H }));
  for (const g of data.gaps) {
    el.append(svg('rect', {
      class: 'tl-gap', x: x(g.start_ts), y: BAR_Y, width: Math.max(0, x(g.end_ts) - x(g.start_ts)), height: BAR_H,
    }, svg('title', {}, t('footage.gapTitle', { from: fmtTime(g.start_ts), to: fmtTime(g.end_ts) }))));
  }
  for (const r of data.ranges) {
    // At least 2 units wide: a few seconds in a day's window must still be visible and clickable.
    el.append(svg('rect', {
      class: 'tl-range', x: x(r.start_ts), y: BAR_Y, width: Math.max(2, x(r.end_ts) - x(r.start_ts)), height: BAR_H,
      dataset: { start: r.start_ts, end: r.end_ts },
    }, svg('title', {}, t('footage.rangeTitle', { from: fmtTime(r.start_ts), to: fmtTime(r.end_ts) }))));
  }
  const step = tickStep(span);
  const first = Math.ceil((since + VN_OFFSET_S) / step) * step - VN_OFFSET_S;
  for (let ts = first; ts < data.until_ts; ts += step) {
    const tx = x(ts);
    el.append(
      svg('line', { class: 'tl-tick', x1: tx, x2: tx, y1: BAR_Y + BAR_H, y2: BAR_Y + BAR_H + 6 }),
      svg('text', { class: 'tl-label', x: tx, y: HEIGHT - 4, 'text-anchor': 'middle' },
        fmtTime(ts, { hour: '2-digit', minute: '2-digit' })));
  }
  for (const incident of data.incidents) {
    const ix = x(incident.start_ts);
    const marker = svg('g', {
      class: `tl-incident sev-${incident.severity}`, dataset: { id: incident.id },
      onclick: (event) => {
        event.stopPropagation();
        onPick(incident.start_ts - 3); // a moment before: see it happen
      },
    },
    svg('line', { x1: ix, x2: ix, y1: BAR_Y - 2, y2: BAR_Y + BAR_H }),
    svg('polygon', { points: `${ix - 5},2 ${ix + 5},2 ${ix},${BAR_Y - 1}` }),
    svg('title', {}, `${t(`type.${incident.type}`)} · ${fmtTime(incident.start_ts)}`));
    el.append(marker);
  }
  el.append(playhead);
  el.addEventListener('click', (event) => {
    const box = el.getBoundingClientRect();
    onPick(since + ((event.clientX - box.left) / box.width) * span);
  });
  return {
    el,
    setPlayhead(ts) {
      const visible = ts !== null && ts >= since && ts <= data.until_ts;
      playhead.setAttribute('visibility', visible ? 'visible' : 'hidden');
      if (visible) {
        playhead.setAttribute('x1', x(ts));
        playhead.setAttribute('x2', x(ts));
      }
    },
  };
}
