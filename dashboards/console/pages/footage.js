// Recorded footage: pick a camera and a time (Vietnam time), see what was recorded in
// the window (ranges, gaps, incidents) and click the timeline to play from there.
import { fromLocalInput, toLocalInput } from '../i18n.js';
import { kitStrings, safely, useStyles } from './kit.js';
import { drawTimeline, snapToRecorded } from './timeline.js';

const SPANS_S = [600, 1800, 3600, 3 * 3600, 6 * 3600, 24 * 3600];
const PLAY_S = 300; // one click plays five minutes: a short remux, quick to start
const LEAD_S = 20; // and starts a little before the clicked moment
const REFRESH_MS = 30000; // a window reaching "now" grows as segments are recorded

/**
 * The clip must start where we know the wall time of its first frame, or a click could
 * not seek to the right moment: footage.mp4 starts on the key frame at or before since_ts.
 * The HLS playlist names each segment's wall-clock start, and segments start on key
 * frames, so a window starting just after a segment start begins exactly there.
 */
async function alignedStart(api, cameraId, ts, signal) {
  const path = `/api/cameras/${encodeURIComponent(cameraId)}/footage.m3u8`;
  const response = await fetch(api.url(path, { since_ts: ts, until_ts: ts + PLAY_S }), {
    credentials: 'same-origin', signal,
  });
  if (!response.ok) return null;
  const match = (await response.text()).match(/#EXT-X-PROGRAM-DATE-TIME:(\S+)/);
  // Milliseconds are truncated in the playlist: +1 ms is at or after the true start.
  return match ? Date.parse(match[1]) / 1000 + 0.001 : null;
}

export default {
  id: 'footage',
  route: '#/footage',
  navKey: 'nav.footage',
  roles: ['admin', 'operator', 'police'], // footage.mp4 is MEDIA
  strings: {
    vi: {
      ...kitStrings.vi,
      'nav.footage': 'Xem lại',
      'footage.title': 'Xem lại video',
      'footage.camera': 'Camera',
      'footage.from': 'Từ (giờ Việt Nam)',
      'footage.span': 'Khoảng thời gian',
      'footage.span.600': '10 phút', 'footage.span.1800': '30 phút', 'footage.span.3600': '1 giờ',
      'footage.span.10800': '3 giờ', 'footage.span.21600': '6 giờ', 'footage.span.86400': '24 giờ',
      'footage.earlier': '◀ Trước',
      'footage.later': 'Sau ▶',
      'footage.now': 'Hiện tại',
      'footage.timeline': 'Dòng thời gian ghi hình',
      'footage.summary': 'Đã ghi {recorded} trong {span}; {incidents} sự kiện. Bấm vào dòng thời gian để xem.',
      'footage.minutes': '{n} phút',
      'footage.seconds': '{n} giây',
      'footage.rangeTitle': 'Có ghi hình {from} – {to}',
      'footage.gapTitle': 'Không ghi hình {from} – {to}',
      'footage.nothing': 'Không có ghi hình trong khoảng này.',
      'footage.playing': 'Đang phát {from} – {to}',
      'footage.download': 'Tải video đoạn này (MP4)',
      'footage.videoError': 'Không tải được video: {message}',
      'footage.noCameras': 'Chưa có camera nào.',
      'footage.legend': 'Xanh: có ghi hình · Xám: không ghi · Vạch đỏ/vàng: sự kiện',
    },
    en: {
      ...kitStrings.en,
      'nav.footage': 'Footage',
      'footage.title': 'Recorded footage',
      'footage.camera': 'Camera',
      'footage.from': 'From (Vietnam time)',
      'footage.span': 'Window',
      'footage.span.600': '10 min', 'footage.span.1800': '30 min', 'footage.span.3600': '1 hour',
      'footage.span.10800': '3 hours', 'footage.span.21600': '6 hours', 'footage.span.86400': '24 hours',
      'footage.earlier': '◀ Earlier',
      'footage.later': 'Later ▶',
      'footage.now': 'Now',
      'footage.timeline': 'Recording timeline',
      'footage.summary': 'Recorded {recorded} of {span}; {incidents} incidents. Click the timeline to play.',
      'footage.minutes': '{n} min',
      'footage.seconds': '{n} s',
      'footage.rangeTitle': 'Recorded {from} – {to}',
      'footage.gapTitle': 'Not recorded {from} – {to}',
      'footage.nothing': 'Nothing recorded in this window.',
      'footage.playing': 'Playing {from} – {to}',
      'footage.download': 'Download this footage (MP4)',
      'footage.videoError': 'The footage could not be loaded: {message}',
      'footage.noCameras': 'No cameras yet.',
      'footage.legend': 'Blue: recorded · Grey: not recorded · Red/yellow marks: incidents',
    },
  },
  async render(root, { api, t, h, fmtTime, lang, params, signal, toast }) {
    useStyles();
    const cameras = await api.get('/api/cameras', { signal });
    root.append(h('h1', {}, t('footage.title')));
    if (!cameras.length) {
      root.append(h('p', { class: 'empty' }, t('footage.noCameras')));
      return undefined;
    }
    const now = () => Date.now() / 1000;
    const asked = Number(params.get('ts')) || null;
    const state = {
      camera: cameras.some((c) => c.id === params.get('camera')) ? params.get('camera') : cameras[0].id,
      span: 3600,
      since: asked ? asked - 1800 : now() - 3600,
      data: null,
      clipStart: null,
    };

    const camera = h('select', { name: 'camera' },
      cameras.map((c) => h('option', { value: c.id, selected: c.id === state.camera }, c.name || c.id)));
    const from = h('input', { type: 'datetime-local', name: 'from' });
    const span = h('select', { name: 'span' },
      SPANS_S.map((s) => h('option', { value: s, selected: s === state.span }, t(`footage.span.${s}`))));
    const shift = (sign) => safely(() => { state.since += (sign * state.span) / 2; return load(); });
    const toolbar = h('div', { class: 'toolbar' },
      h('label', {}, t('footage.camera'), camera),
      h('label', {}, t('footage.from'), from),
      h('label', {}, t('footage.span'), span),
      h('button', { type: 'button', onclick: shift(-1) }, t('footage.earlier')),
      h('button', { type: 'button', onclick: shift(1) }, t('footage.later')),
      h('button', { type: 'button', onclick: safely(() => { state.since = now() - state.span; return load(); }) }, t('footage.now')));
    const holder = h('div', { class: 'timeline-holder' });
    const summary = h('p', { class: 'muted', 'data-testid': 'footage-summary' });
    const video = h('video', { controls: true, muted: true, playsInline: true, preload: 'auto', class: 'footage-video' });
    const caption = h('p', { class: 'muted' });
    const download = h('a', { class: 'download', hidden: true, 'data-testid': 'footage-download' }, t('footage.download'));
    const player = h('div', { class: 'player', hidden: true }, video, h('div', { class: 'actions' }, caption, download));
    root.append(toolbar, holder, h('p', { class: 'muted legend' }, t('footage.legend')), summary, player);

    const number = new Intl.NumberFormat(lang === 'vi' ? 'vi-VN' : 'en-GB', { maximumFractionDigits: 1 });
    const duration = (s) => (s < 60
      ? t('footage.seconds', { n: number.format(Math.round(s)) })
      : t('footage.minutes', { n: number.format(s / 60) }));
    let timeline = null;
    const wallTime = () => (state.clipStart === null ? null : state.clipStart + video.currentTime);
    video.addEventListener('timeupdate', () => timeline && timeline.setPlayhead(wallTime()), { signal });
    video.addEventListener('error', () => {
      const message = video.error ? video.error.message || `code ${video.error.code}` : '';
      toast(t('footage.videoError', { message }), 'error');
    }, { signal });

    const play = safely(async (ts) => {
      const at = snapToRecorded(state.data ? state.data.ranges : [], ts);
      if (at === null) {
        toast(t('footage.nothing'));
        return;
      }
      const wanted = Math.max(0, at - LEAD_S);
      const start = (await alignedStart(api, state.camera, wanted, signal)) ?? wanted;
      const clip = { since_ts: start, until_ts: start + PLAY_S };
      const path = `/api/cameras/${encodeURIComponent(state.camera)}/footage.mp4`;
      state.clipStart = start;
      player.hidden = false;
      caption.textContent = t('footage.playing', { from: fmtTime(start), to: fmtTime(start + PLAY_S) });
      download.href = api.url(path, { ...clip, download: true });
      download.hidden = false;
      video.addEventListener('loadedmetadata', () => {
        video.currentTime = Math.max(0, at - start);
        video.play().catch(() => {}); // autoplay refused: the controls are there
      }, { once: true, signal });
      video.src = api.url(path, clip);
    });

    async function load() {
      state.span = Number(span.value);
      from.value = toLocalInput(state.since);
      const until = state.since + state.span;
      const data = await api.get(`/api/cameras/${encodeURIComponent(state.camera)}/timeline`, {
        params: { since_ts: state.since, until_ts: until }, signal,
      });
      state.data = data;
      timeline = drawTimeline(data, { t, fmtTime, onPick: play });
      timeline.setPlayhead(wallTime());
      holder.replaceChildren(timeline.el);
      summary.textContent = data.ranges.length
        ? t('footage.summary', {
          recorded: duration(data.recorded_s),
          span: t(`footage.span.${state.span}`),
          incidents: data.incidents.length,
        })
        : t('footage.nothing');
    }

    camera.addEventListener('change', safely(() => {
      state.camera = camera.value;
      state.clipStart = null;
      player.hidden = true;
      video.removeAttribute('src');
      return load();
    }), { signal });
    from.addEventListener('change', safely(() => {
      const ts = fromLocalInput(from.value);
      if (ts === null) return undefined;
      state.since = ts;
      return load();
    }), { signal });
    span.addEventListener('change', safely(() => {
      // A window that reaches "now" keeps doing so; any other zooms around its middle.
      const wanted = Number(span.value);
      const live = state.since + state.span >= now() - 60;
      state.since = live ? now() - wanted : state.since + state.span / 2 - wanted / 2;
      return load();
    }), { signal });

    await load();
    if (asked) play(asked);
    const timer = setInterval(() => {
      if (state.since + state.span > now() - 60) safely(load)();
    }, REFRESH_MS);
    return () => {
      clearInterval(timer);
      video.removeAttribute('src');
      video.load(); // drop the connection to footage.mp4
    };
  },
};
