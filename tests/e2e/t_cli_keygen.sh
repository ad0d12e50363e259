#!/usr/bin/env bash
# t_cli_keygen.sh - `ppcp keygen` and the PSK rules as the CLI shows them:
# a new file of mode 0600 holding 64 hex characters, never overwritten (nor
# through a symlink), two keys differ; a PSK that is group-readable, too
# short, or missing stops every command with exit 255 and a line that names
# the PSK file.  Needs no daemon.
set -euo pipefail
. "$(dirname "$0")/cli_lib.sh"
PORT=9

run "$PPCP" keygen "$TMP/k1"
expect_rc "keygen writes a new file" 0
if [ "$(stat -c %a "$TMP/k1")" = 600 ]; then ok "the file has mode 0600"; else fail "mode $(stat -c %a "$TMP/k1")"; fi
if grep -Eq '^[0-9a-f]{64}$' "$TMP/k1" && [ "$(wc -c <"$TMP/k1")" -eq 65 ]; then
	ok "it holds 64 hex characters and a newline"
else
	fail "content is not 64 hex characters"
fi
cp "$TMP/k1" "$TMP/k1.before"
run "$PPCP" keygen "$TMP/k1"
expect_rc "keygen refuses to overwrite" 255
expect_in "and says why" "already exists.*refusing to overwrite" err
if cmp -s "$TMP/k1" "$TMP/k1.before"; then ok "the old key is untouched"; else fail "the old key changed"; fi

run "$PPCP" keygen "$TMP/k2"
if ! cmp -s "$TMP/k1" "$TMP/k2"; then ok "two keys differ"; else fail "two keys are equal"; fi

ln -s "$TMP/nowhere" "$TMP/link"
run "$PPCP" keygen "$TMP/link"
expect_rc "keygen refuses a symlink" 255
if [ ! -e "$TMP/nowhere" ]; then ok "nothing was written through the symlink"; else fail "the symlink was followed"; fi

run "$PPCP" keygen "$TMP/newdir/psk"
expect_rc "keygen creates a missing parent directory" 0
run "$PPCP" keygen
expect_rc "keygen without FILE is a usage error" 255

# The default PSK path is ~/.config/ppcp/psk.
run "$PPCP" keygen "$HOME/.config/ppcp/psk"
expect_rc "keygen into the default place" 0

# Loading rules, through a command that needs the PSK (no server needed:
# the PSK is loaded before anything is sent).
cp "$TMP/k2" "$TMP/loose"
chmod 644 "$TMP/loose"
run "$PPCP" --psk-file "$TMP/loose" status 127.0.0.1:9
expect_rc "a group-readable PSK is refused" 255
expect_in "with a message naming the PSK file and the fix" "PSK file .*loose.*chmod 600" err
printf 'abcd\n' >"$TMP/short"
chmod 600 "$TMP/short"
run "$PPCP" --psk-file "$TMP/short" exec 127.0.0.1:9 -- true
expect_rc "a short PSK is refused" 255
expect_in "with the format rule" "64 hex characters" err
run "$PPCP" --psk-file "$TMP/missing" exec 127.0.0.1:9 -- true
expect_rc "a missing PSK file" 255
expect_in "says how to make one" "cannot read the PSK file .*missing.*keygen" err
PPCP_PSK_FILE=$TMP/loose run "$PPCP" status 127.0.0.1:9
expect_in "\$PPCP_PSK_FILE is used when --psk-file is not given" "loose" err

finish
