/* auth/acl.c — may this (already authenticated) user open this VM?
 *
 * A VM lists users and groups; a user is allowed when named in users, or
 * when one of the listed groups is the user's primary group (getpwnam) or
 * lists the user as a member (getgrnam gr_mem).  Both lists empty means
 * nobody.  Runs in the helper's worker processes, which are single
 * threaded, so the non-reentrant NSS calls are fine; they also go through
 * NSS (files, sss, ldap) like the rest of the system. */
#include "auth/auth.h"

#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/types.h>

/* True if group g (by name) is user's primary group or lists user as a
 * member.  have_gid/gid carry the user's primary group from getpwnam. */
static bool in_group(const char *g, const char *user, bool have_gid, gid_t gid)
{
    struct group *gr = getgrnam(g);
    if (!gr)
        return false;
    if (have_gid && gr->gr_gid == gid)
        return true;
    for (char **m = gr->gr_mem; m && *m; m++)
        if (strcmp(*m, user) == 0)
            return true;
    return false;
}

bool auth_acl_allows(const struct cfg_vm *vm, const char *user)
{
    if (!vm || !user || !*user)
        return false;
    for (size_t i = 0; i < vm->n_users; i++)
        if (vm->users[i] && strcmp(vm->users[i], user) == 0)
            return true;
    if (vm->n_groups == 0)
        return false;

    bool have_gid = false;
    gid_t gid = 0;
    struct passwd *pw = getpwnam(user);
    if (pw) {
        have_gid = true;
        gid = pw->pw_gid;
    }
    for (size_t i = 0; i < vm->n_groups; i++)
        if (vm->groups[i] && *vm->groups[i] && in_group(vm->groups[i], user, have_gid, gid))
            return true;
    return false;
}
