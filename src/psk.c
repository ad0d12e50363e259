/* psk.c: not written yet. */
