/* tests/pam/pam_slow.c — a PAM module for tests: it sleeps, to give PAM
 * checks a cost that depends on the user, like pam_unix (which answers an
 * unknown user without hashing).
 *
 *   auth optional /path/pam_slow.so ms=N passdb=FILE
 *
 * sleeps N ms when the user has a "user:" line in FILE (a pam_matrix
 * passdb), else returns at once; always PAM_IGNORE.  Built by the Makefile
 * as build/tests/pam_slow.so; only test_auth_pam loads it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <security/pam_modules.h>

/* Does passdb hold a line starting with "user:"? */
static int known(const char *passdb, const char *user)
{
    FILE *f = fopen(passdb, "r");
    if (!f)
        return 0;
    char line[512];
    size_t ul = strlen(user);
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strncmp(line, user, ul) == 0 && line[ul] == ':';
    fclose(f);
    return found;
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)flags;
    long ms = 0;
    const char *passdb = NULL;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "ms=", 3) == 0)
            ms = strtol(argv[i] + 3, NULL, 10);
        else if (strncmp(argv[i], "passdb=", 7) == 0)
            passdb = argv[i] + 7;
    }
    const char *user = NULL;
    if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || !user || !passdb)
        return PAM_IGNORE;
    if (ms > 0 && known(passdb, user)) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
    return PAM_IGNORE;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)pamh;
    (void)flags;
    (void)argc;
    (void)argv;
    return PAM_IGNORE;
}
