/* hello.c: not written yet. */
