#!/usr/bin/env bash
# Start a PulseAudio daemon for the live tests and print the environment that reaches it.
#
#   eval "$(bash tools/ci_pulse.sh)"     # then: python -m pytest tests/live tests/sources
#
# Works as root in a container without a session bus or systemd (CI): pulseaudio refuses root only in its
# default autospawn path; started explicitly with --system=false it runs as a per-user daemon (it logs "This
# program is not intended to be run as root", which is harmless). Its default script loads
# module-always-sink, so a null sink "auto_null" exists; the tests add their own null sink besides.
# Needs: apt-get install -y pulseaudio pulseaudio-utils libasound2-plugins libportaudio2
set -u
runtime="${XDG_RUNTIME_DIR:-/tmp/runtime-$(id -u)}"
mkdir -p "$runtime" && chmod 700 "$runtime"
export XDG_RUNTIME_DIR="$runtime"
export PULSE_SERVER="unix:$runtime/pulse/native"
started=0
if ! pactl info >/dev/null 2>&1; then
    started=1
    pulseaudio -D --exit-idle-time=-1 --system=false 2>/dev/null || {
        echo "tools/ci_pulse.sh: pulseaudio failed to start; run it in the foreground to see why:" \
             "XDG_RUNTIME_DIR=$runtime pulseaudio --exit-idle-time=-1 --system=false -vv" >&2
        exit 1
    }
fi
for _ in $(seq 1 100); do
    if pactl info >/dev/null 2>&1; then
        echo "export XDG_RUNTIME_DIR='$runtime'"
        echo "export PULSE_SERVER='$PULSE_SERVER'"
        echo "export STREAMTAG_PULSE_STARTED=$started"  # 1: the caller stops it (pulseaudio --kill) when done
        exit 0
    fi
    sleep 0.1
done
echo "tools/ci_pulse.sh: pulseaudio started but does not answer on $PULSE_SERVER" >&2
exit 1
