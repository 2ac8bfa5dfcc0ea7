# mypy: ignore-errors
"""Serve MP4 clips as live RTSP cameras on 127.0.0.1 (GStreamer RTSP server).

Run by Debian's own ``/usr/bin/python3`` (it needs ``gi`` and GstRtspServer, which the
project's venv lacks); ``tests/rtsp/harness.py`` starts it. Usage::

    /usr/bin/python3 gst_server.py --port 8554 --spec mounts.json   # or --spec '{...}'

The spec is ``{"mounts": [{"path": "/cam07", "clip": "/abs/clip.mp4",
"user": "u", "password": "p"}]}`` (``user``/``password`` optional: RTSP basic auth,
wrong or missing credentials get 401). ``--port 0`` lets the kernel pick a port.
Prints ``READY port=N`` once listening; exits 0 on SIGTERM/SIGINT, and on its own
when ``--parent-pid`` disappears.

Each mount behaves like a camera:
- video only (the first video track; audio is never linked), H.264 sent as is;
- plays at real time (the RTSP sinks sync on the clock) and loops forever: a pad
  probe drops the demuxer's EOS, a flushing seek rewinds the demuxer (its flush
  events are dropped at the same probe, so nothing downstream notices), and the
  parser's sink pad offset grows by the length of each pass, so RTP timestamps
  keep increasing across loops without gaps. Later passes restart on the clip's
  first key frame (see ``Looper``);
- one shared pipeline per mount for every client; client seeks are refused (the
  media is made unseekable, see ``_factory``), so a client that joins later does
  not rewind the others: it gets the stream from now on and decodes from the next
  key frame, as with a real camera.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

ANON_ROLE = "anonymous"


def log(msg):
    print(f"gst_server: {msg}", file=sys.stderr, flush=True)


class Looper:
    """Makes demuxer -> parser loop forever with increasing timestamps.

    The first pass plays the clip from 0; later passes restart on its first key
    frame (a clip cut from a camera recording may start with frames that reference
    nothing), so no pass stalls on undecodable frames.
    """

    def __init__(self, name, demux, parse):
        self.name = name
        self.demux = demux
        self.parse = parse
        self.pad = parse.get_static_pad("sink")
        self.offset = 0  # added to the running time downstream of the demuxer
        self.segment = None  # the demuxer's latest segment
        self.key_time = None  # stream time of the clip's first key frame
        self.pass_start = 0  # stream time the current pass started from
        self.rewinding = False
        self.pad.add_probe(
            Gst.PadProbeType.EVENT_DOWNSTREAM | Gst.PadProbeType.EVENT_FLUSH, self._on_event
        )
        self.pad.add_probe(Gst.PadProbeType.BUFFER, self._find_key_frame)

    def _on_event(self, _pad, info):
        event = info.get_event()
        if event.type == Gst.EventType.SEGMENT:
            self.segment = event.parse_segment()
        elif event.type == Gst.EventType.EOS:
            if not self.rewinding:
                self.rewinding = True
                GLib.idle_add(self._rewind)  # never seek from the streaming thread
            return Gst.PadProbeReturn.DROP
        elif self.rewinding and event.type in (
            Gst.EventType.FLUSH_START,
            Gst.EventType.FLUSH_STOP,
        ):
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK

    def _find_key_frame(self, _pad, info):
        buffer = info.get_buffer()
        if buffer.has_flags(Gst.BufferFlags.DELTA_UNIT) or self.segment is None:
            return Gst.PadProbeReturn.OK
        self.key_time = max(0, self.segment.to_stream_time(Gst.Format.TIME, buffer.pts))
        return Gst.PadProbeReturn.REMOVE  # one-shot: no Python per buffer afterwards

    def _rewind(self):
        # A pass lasts from where it started to the clip's end; the position query
        # guards against a container duration shorter than the last frame's end.
        ok_d, duration = self.demux.query_duration(Gst.Format.TIME)
        ok_p, position = self.parse.query_position(Gst.Format.TIME)
        end = max(duration if ok_d else 0, position if ok_p else 0)
        if end <= self.pass_start:
            log(f"{self.name}: clip length unknown, timestamps will jump back")
        # A flushing seek restarts the running time at 0 from the seek position.
        self.offset += max(0, end - self.pass_start)
        self.pad.set_offset(self.offset)
        self.pass_start = self.key_time or 0
        flags = Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT
        if not self.demux.seek_simple(Gst.Format.TIME, flags, self.pass_start):
            log(f"{self.name}: rewind seek failed")
        self.rewinding = False
        return False


class ClipFactory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, path, clip):
        super().__init__()
        self.mount = path
        self.clip = clip

    def do_create_element(self, _url):
        bin_ = Gst.Bin.new(None)
        src = Gst.ElementFactory.make("filesrc", None)
        src.set_property("location", self.clip)
        demux = Gst.ElementFactory.make("qtdemux", None)
        parse = Gst.ElementFactory.make("h264parse", None)
        parse.set_property("config-interval", -1)  # SPS/PPS before every key frame
        pay = Gst.ElementFactory.make("rtph264pay", "pay0")
        pay.set_property("pt", 96)
        for element in (src, demux, parse, pay):
            bin_.add(element)
        src.link(demux)
        parse.link(pay)
        sink = parse.get_static_pad("sink")

        def on_pad(_demux, pad):
            if pad.get_name().startswith("video") and not sink.is_linked():
                pad.link(sink)

        demux.connect("pad-added", on_pad)
        bin_.looper = Looper(self.mount, demux, parse)  # lives as long as the bin
        return bin_


def _permissions(role):
    perms = GstRtspServer.RTSPPermissions()
    perms.add_permission_for_role(role, "media.factory.access", True)
    perms.add_permission_for_role(role, "media.factory.construct", True)
    if role != ANON_ROLE:
        # Anonymous clients may see the mount but not play it: 401 (with a
        # WWW-Authenticate challenge) instead of 404, like a camera asking for a login.
        perms.add_permission_for_role(ANON_ROLE, "media.factory.access", True)
        perms.add_permission_for_role(ANON_ROLE, "media.factory.construct", False)
    return perms


def _factory(mount, auth):
    factory = ClipFactory(mount["path"], os.path.abspath(mount["clip"]))
    factory.set_shared(True)
    # Makes the media unseekable: the PLAY of a second client (ffmpeg always sends
    # Range: npt=0-) would otherwise seek the shared pipeline back to 0 for everyone.
    factory.set_publish_clock_mode(GstRtspServer.RTSPPublishClockMode.CLOCK_AND_OFFSET)
    user = mount.get("user")
    if user is None:
        factory.set_permissions(_permissions(ANON_ROLE))
    else:
        role = f"user:{mount['path']}"
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", role)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, mount.get("password", "")), token)
        factory.set_permissions(_permissions(role))
    return factory


def load_spec(value):
    if value.lstrip().startswith(("{", "[")):
        text = value
    else:
        with open(value) as spec_file:
            text = spec_file.read()
    spec = json.loads(text)
    mounts = spec["mounts"] if isinstance(spec, dict) else spec
    for mount in mounts:
        if not str(mount.get("path", "")).startswith("/"):
            raise ValueError(f"mount path must start with '/': {mount!r}")
        if not os.path.isfile(mount.get("clip", "")):
            raise ValueError(f"clip not found: {mount.get('clip')!r}")
    return mounts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--spec", required=True, help="JSON text or path to a JSON file")
    parser.add_argument("--parent-pid", type=int, default=0, help="exit when it disappears")
    args = parser.parse_args(argv)
    try:
        mounts = load_spec(args.spec)
    except (OSError, ValueError, KeyError) as exc:
        log(f"bad spec: {exc}")
        return 2

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    auth = GstRtspServer.RTSPAuth()
    anonymous = GstRtspServer.RTSPToken()
    anonymous.set_string("media.factory.role", ANON_ROLE)
    auth.set_default_token(anonymous)
    points = server.get_mount_points()
    for mount in mounts:
        points.add_factory(mount["path"], _factory(mount, auth))
    server.set_auth(auth)
    if server.attach(None) == 0:
        log(f"cannot listen on 127.0.0.1:{args.port}")
        return 1

    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, lambda *_: loop.quit() or False)

    def parent_alive():
        if args.parent_pid and os.getppid() != args.parent_pid:
            log("parent gone, exiting")
            loop.quit()
            return False
        return True

    GLib.timeout_add_seconds(1, parent_alive)
    print(f"READY port={server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
