/*
 * fuzz_server.c - a server connection fed arbitrary bytes from its creation (a TCP PONG is
 * configured, so PING frames are answered); sealed inputs take over after the real hellos and
 * seal records under the real client's c_hs, so AUTH parsing runs behind valid AEAD.
 * Input format: fuzz_common.h.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_run(data, size, PPCP_ROLE_SERVER, FZ_STAGE_START, FZ_STAGE_AUTH);
	return 0;
}
