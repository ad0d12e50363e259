/* keysched.c: not written yet. */
