/* disco.c: not written yet. */
