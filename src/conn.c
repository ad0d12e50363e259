/* conn.c: not written yet. */
