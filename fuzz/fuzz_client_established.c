/*
 * fuzz_client_established.c - an ESTABLISHED client after a real in-memory handshake, fed
 * arbitrary bytes, or records sealed under the real server's s_ap.
 * Input format: fuzz_common.h.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_run(data, size, PPCP_ROLE_CLIENT, FZ_STAGE_ESTABLISHED, FZ_STAGE_ESTABLISHED);
	return 0;
}
