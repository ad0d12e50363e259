#!/usr/bin/env bash
# t_cli_cache.sh - name resolution and the address cache on loopback.  A
# server restarted on another address (127.0.0.2 -> 127.0.0.3, the same
# server_id) is reached by `ppcp exec <id>` again with no user action and
# nothing said (with -v it says it moved); the cache file is mode 0600,
# written whole (no temporary left), and lists the new address first.  A
# hostname resolves to its one server; a hostname two servers share is an
# error that lists both ids.
set -euo pipefail
. "$(dirname "$0")/cli_lib.sh"
need_ppcpd

newpsk "$TMP/psk"
DISCOVER=127.0.0.2,127.0.0.3
for _ in 1 2 3 4 5; do
	PORT=$(random_port)
	start_ppcpd mover 127.0.0.2 "$PORT" --allow-exec '*' --state-dir "$TMP/m" && break
	stop_ppcpd mover KILL
done
CACHE=$XDG_STATE_HOME/ppcp/servers.json

run pc exec mover -- echo first
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = first ]; then ok "exec by server_id"; else fail "exec by server_id: rc $RC"; show "$TMP/err"; fi
if [ -f "$CACHE" ] && [ "$(stat -c %a "$CACHE")" = 600 ]; then ok "the cache exists with mode 0600"; else fail "cache file missing or wrong mode"; fi
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["servers"]["mover"]["addresses"][0]=="127.0.0.2"' "$CACHE"; then
	ok "the cache holds mover -> 127.0.0.2"
else
	fail "cache content"
	show "$CACHE"
fi

run pc -v exec mover -- true
expect_in "the next exec uses the cached address (-v)" "connected to mover at 127\.0\.0\.2 .*\(cached\)" err

stop_ppcpd mover
start_ppcpd mover 127.0.0.3 "$PORT" --allow-exec '*' --state-dir "$TMP/m"
run pc exec mover -- echo moved
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = moved ]; then ok "after the move, exec mover still works"; else fail "after the move: rc $RC"; show "$TMP/out" "$TMP/err"; fi
expect_empty "and says nothing" err
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); a=d["servers"]["mover"]["addresses"]; assert a[0]=="127.0.0.3" and "127.0.0.2" in a, a' "$CACHE"; then
	ok "the cache now lists 127.0.0.3 first"
else
	fail "cache after the move"
	show "$CACHE"
fi
if [ -z "$(find "$XDG_STATE_HOME/ppcp" -name 'servers.json.*')" ]; then ok "no temporary file left"; else fail "temporary cache files left"; fi

stop_ppcpd mover
start_ppcpd mover 127.0.0.2 "$PORT" --allow-exec '*' --state-dir "$TMP/m"
run pc -v exec mover -- true
expect_rc "moved back" 0
expect_in "-v says it moved" "mover moved: was at 127\.0\.0\.3, found at 127\.0\.0\.2" err

# A corrupt cache is ignored and rewritten.
echo '{not json' >"$CACHE"
run pc exec mover -- true
expect_rc "a corrupt cache does not stop a command" 0
if python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$CACHE"; then ok "and is rewritten"; else fail "corrupt cache not rewritten"; fi

# Hostnames: one server has it -> that one; two -> an error listing both.
HOST=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["servers"]["mover"]["hostname"])' "$CACHE")
rm -f "$CACHE"
run pc exec "$HOST" -- echo by-hostname
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = by-hostname ]; then ok "exec by hostname ($HOST)"; else fail "exec by hostname: rc $RC"; show "$TMP/err"; fi
start_ppcpd twin 127.0.0.3 "$PORT" --allow-exec '*' --state-dir "$TMP/t"
rm -f "$CACHE"
run pc exec "$HOST" -- true
expect_rc "a hostname two servers share" 255
expect_in "is an error that lists both server_ids" "hostname of several servers: .*(mover, twin|twin, mover)" err
run pc exec twin -- echo twin
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = twin ]; then ok "the server_id still works"; else fail "exec twin: rc $RC"; fi

run pc exec "127.0.0.3:$PORT" -- true
expect_rc "a literal address connects without an expected id" 0

# A PONG is a hint: an impostor that answers first for "victim" (it claims
# the id, but holds another PSK) fails the handshake, and the real victim,
# which answers second, is still reached.
stop_ppcpd mover
stop_ppcpd twin
newpsk "$TMP/impostor-psk"
SERVER_PSK=$TMP/impostor-psk start_ppcpd victim 127.0.0.2 "$PORT" --allow-exec '*' --state-dir "$TMP/i"
SERVER_ID=victim start_ppcpd victim-real 127.0.0.3 "$PORT" --allow-exec '*' --state-dir "$TMP/v"
rm -f "$CACHE"
run pc exec victim -- echo real
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = real ]; then ok "an impostor answering first does not hide the real server"; else fail "impostor: rc $RC"; show "$TMP/out" "$TMP/err"; fi
if [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["servers"]["victim"]["addresses"][0])' "$CACHE")" = 127.0.0.3 ]; then
	ok "and only the authenticated address is cached"
else
	fail "impostor address cached"
	show "$CACHE"
fi

finish
