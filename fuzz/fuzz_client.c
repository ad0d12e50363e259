/*
 * fuzz_client.c - a client connection (its CLIENT_HELLO already written) fed arbitrary bytes
 * where SERVER_HELLO is expected; sealed inputs take over after the real hellos and seal
 * records under the real server's s_hs, so AUTH_OK parsing runs behind valid AEAD.
 * Input format: fuzz_common.h.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_run(data, size, PPCP_ROLE_CLIENT, FZ_STAGE_START, FZ_STAGE_AUTH);
	return 0;
}
