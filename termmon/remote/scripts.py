"""The POSIX sh that runs on the remote side, and the commands that call it.

Only sh and standard tools: find (with -maxdepth, -print0's portable twin ``-exec printf``), stat
(GNU/busybox ``-c`` or BSD ``-f``), tail -c, head -c, cksum, wc, mv, mkdir. Every path and name is an
argument quoted with :func:`shlex.quote`, never part of the script's text otherwise; the only unquoted
expansion is the user's glob, with field splitting off (IFS empty), so it expands as a glob and
nothing else. Replies are framed: a header line of numbers and tags, then exactly the byte count it
names; file names travel NUL-separated inside such a blob, so no name can break the framing.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from termmon.ingest.discovery import MAX_DEPTH, SKIP_DIRS
from termmon.remote import files

PRELUDE = r"""
umask 077
T=$(mktemp -d "${TMPDIR:-/tmp}/termmon.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
trap 'exit 1' HUP INT TERM PIPE
if stat -L -c '%d %i %s %Y' / >/dev/null 2>&1; then
  tm_stat() { stat -L -c '%d %i %s %Y' -- "$1" 2>/dev/null; }
else
  tm_stat() { stat -L -f '%d %i %z %m' -- "$1" 2>/dev/null; }
fi
tm_blob() { n=$(($(wc -c < "$T/b"))); echo "$1 $n"; cat "$T/b"; }
tm_send() {
  tail -c +"$(($4 + 1))" -- "$3" 2>/dev/null | head -c "$tm_rem" > "$T/b"
  s2=$(tm_stat "$3")
  if [ "${s2% * *}" != "$5" ]; then echo "S $6"; return 0; fi
  n=$(($(wc -c < "$T/b"))); tm_rem=$((tm_rem - n))
  echo "$1 $2 $n"; cat "$T/b"
}
tm_reg() { eval "tm_d_$1=\$2 tm_p_$1=\$3"; }
tm_f() {
  i=$1 od=$2 oi=$3 off=$4 omt=$5 fpl=$6 fps=$7
  eval "d=\$tm_d_$1 f=\$tm_p_$1"
  if [ "$tm_rem" -le 0 ]; then echo "S $i"; return 0; fi
  s=$(tm_stat "$f") || { echo "M $i"; return 0; }
  set -- $s
  id="$1 $2"
  if [ "$1" = "$od" ] && [ "$2" = "$oi" ]; then
    if [ "$3" -lt "$off" ]; then tm_send R "$i $s" "$f" 0 "$id" "$i"
    elif [ "$3" -eq "$off" ] && [ "$4" = "$omt" ]; then echo "A $i $s 0"
    elif [ "$fpl" -gt 0 ] && [ "$(head -c "$fpl" -- "$f" | cksum)" != "$fps" ]; then
      tm_send R "$i $s" "$f" 0 "$id" "$i"
    elif [ "$3" -eq "$off" ]; then echo "A $i $s 0"
    else tm_send A "$i $s" "$f" "$off" "$id" "$i"; fi
    return 0
  fi
  rot=0
  if [ "$oi" != 0 ] && [ -n "$(find "$d" -maxdepth 1 -type f -inum "$oi" -print 2>/dev/null)" ]; then
    rot=1
    find "$d" -maxdepth 1 -type f -inum "$oi" -exec tail -c +"$((off + 1))" {} \; 2>/dev/null \
      | head -c "$tm_rem" > "$T/b"
    n=$(($(wc -c < "$T/b")))
    if [ "$n" -gt 0 ]; then tm_rem=$((tm_rem - n)); echo "D $i $n"; cat "$T/b"; return 0; fi
  fi
  tm_send N "$i $s $rot" "$f" 0 "$id" "$i"
}
tm_root() {
  : > "$T/b"
  IFS=
  for p in $2; do
    if [ -d "$p" ]; then
      a=$(cd -P -- "$p" && pwd -P && printf x) || continue
      a=${a%?x}
      printf 'd\000%s\000' "$a" >> "$T/b"
      find "$a" -mindepth 1 -maxdepth DEPTH PRUNE -prune -o -type f MATCH \
        -exec printf 'p\000%s\000' {} + 2>/dev/null >> "$T/b"
    elif [ -f "$p" ]; then
      case $p in */*) dp=${p%/*}; bn=${p##*/};; *) dp=.; bn=$p;; esac
      a=$(cd -P -- "${dp:-/}" && pwd -P && printf x) || continue
      a=${a%?x}
      printf 'f\000%s\000%s\000' "$a" "$bn" >> "$T/b"
      find "$a" -mindepth 1 -maxdepth FILEDEPTH PRUNE -prune -o -type f MATCH \
        -exec printf 'p\000%s\000' {} + 2>/dev/null >> "$T/b"
    fi
  done
  unset IFS
  tm_blob "B $1"
}
tm_cat() { cat -- "$1" > "$T/b" 2>/dev/null || : > "$T/b"; tm_blob C; }
tm_put() {
  if err=$( { set -C; printf '%s' "$4" > "$1/$3" && mv -f -- "$1/$3" "$1/$2"; } 2>&1 ); then
    echo "W 0"
  else
    rm -f -- "$1/$3"; printf '%s' "$err" > "$T/b"; tm_blob "W 1"
  fi
}
"""


def _find_tests() -> tuple[str, str]:
    prune = " -o ".join(["-name '.*'", *(f"-name {shlex.quote(d)}" for d in sorted(SKIP_DIRS))])
    names = [g for g in files.MIRRORED if "/" not in g]
    match = " -o ".join(
        [
            *(f"-name {shlex.quote(g)}" for g in names),
            *(f"-path {shlex.quote(f'*/{d}/*')}" for d in files.subdirs()),
        ]
    )
    return f"-type d \\( {prune} \\)", f"\\( {match} \\)"


def prelude() -> str:
    prune, match = _find_tests()
    depth = MAX_DEPTH + files.FILE_DEPTH
    return (
        PRELUDE.replace("FILEDEPTH", str(files.FILE_DEPTH))
        .replace("DEPTH", str(depth))
        .replace("PRUNE", prune)
        .replace("MATCH", match)
    )


def q(*words: object) -> str:
    return " ".join(shlex.quote(str(w)) for w in words)


def discover(patterns: Iterable[str]) -> str:
    """Expand each pattern and list the candidate run files below each match: replies ``B idx n``."""
    return "".join(f"tm_root {q(i, p)}\n" for i, p in enumerate(patterns))


def register(files: Iterable[tuple[int, str, str]]) -> str:
    """Tell the remote shell the (number, dir, path) of files, once per session (``eval`` only ever
    sees our own number; the path stays a quoted argument)."""
    return "".join(f"tm_reg {q(*f)}\n" for f in files)


def poll(requests: Iterable[tuple[object, ...]], budget: int) -> str:
    """One ``tm_f`` per file (number dev ino offset mtime head_len head_sum), then ``E``. An unchanged
    size and mtime skip the head check, so an idle file costs one ``stat`` a poll."""
    lines = [f"tm_rem={int(budget)}\n"]
    lines += [f"tm_f {q(*r)}\n" for r in requests]
    lines.append("echo E\n")
    return "".join(lines)


def cat(path: str) -> str:
    return f"tm_cat {q(path)}\n"


def put(directory: str, name: str, temp_name: str, content: str) -> str:
    """Write ``content`` to ``directory/temp_name`` (refusing to clobber), then rename it to ``name``."""
    return f"tm_put {q(directory, name, temp_name, content)}\n"
