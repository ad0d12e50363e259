/* io.c: not written yet. */
