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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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

/* user named in users[0..nu), or in one of groups[0..ng) (primary group by
 * getpwnam, or a member by getgrnam). */
static bool lists_allow(char *const *users, size_t nu, char *const *groups, size_t ng,
                        const char *user)
{
    if (!user || !*user)
        return false;
    for (size_t i = 0; i < nu; i++)
        if (users[i] && strcmp(users[i], user) == 0)
            return true;
    if (ng == 0)
        return false;

    bool have_gid = false;
    gid_t gid = 0;
    struct passwd *pw = getpwnam(user);
    if (pw) {
        have_gid = true;
        gid = pw->pw_gid;
    }
    for (size_t i = 0; i < ng; i++)
        if (groups[i] && *groups[i] && in_group(groups[i], user, have_gid, gid))
            return true;
    return false;
}

bool auth_acl_allows(const struct cfg_vm *vm, const char *user)
{
    return vm && lists_allow(vm->users, vm->n_users, vm->groups, vm->n_groups, user);
}

bool auth_power_allows(const struct cfg_vm *vm, const char *user)
{
    return vm && lists_allow(vm->power_users, vm->n_power_users, vm->power_groups,
                             vm->n_power_groups, user);
}

/* A getpw / getgr buffer size: sysconf's hint, at least 16 KiB. */
static size_t nss_bufsz(int which)
{
    long n = sysconf(which);
    return n < 16384 ? 16384 : (size_t)n;
}

bool auth_acl_allows_uid(const struct cfg_vm *vm, uid_t uid, char *name, size_t namesz)
{
    if (!name || namesz < 2)
        return false;
    name[0] = '\0';
    size_t bl = nss_bufsz(_SC_GETPW_R_SIZE_MAX);
    char *buf = malloc(bl);
    if (!buf)
        return false;
    struct passwd pw, *res = NULL;
    if (getpwuid_r(uid, &pw, buf, bl, &res) != 0 || !res || !res->pw_name[0] ||
        strlen(res->pw_name) >= namesz) {
        free(buf);
        return false;
    }
    memcpy(name, res->pw_name, strlen(res->pw_name) + 1);
    gid_t primary = res->pw_gid;
    free(buf);
    if (!vm)
        return false;
    for (size_t i = 0; i < vm->n_users; i++)
        if (vm->users[i] && strcmp(vm->users[i], name) == 0)
            return true;
    if (vm->n_groups == 0)
        return false;

    int ng = 64;
    gid_t *gids = NULL;
    for (int tries = 0; tries < 4; tries++) {
        gid_t *g = realloc(gids, (size_t)ng * sizeof *g);
        if (!g) {
            free(gids);
            return false;
        }
        gids = g;
        int n = ng;
        if (getgrouplist(name, primary, gids, &n) >= 0) {
            ng = n;
            break;
        }
        ng = n > ng ? n : ng * 2;
        if (tries == 3)
            ng = 0;
    }
    bool ok = false;
    size_t gl = nss_bufsz(_SC_GETGR_R_SIZE_MAX);
    char *gbuf = malloc(gl);
    for (size_t i = 0; gbuf && !ok && i < vm->n_groups; i++) {
        struct group gr, *gres = NULL;
        if (!vm->groups[i] || !*vm->groups[i] ||
            getgrnam_r(vm->groups[i], &gr, gbuf, gl, &gres) != 0 || !gres)
            continue;
        for (int j = 0; j < ng; j++)
            if (gids[j] == gres->gr_gid) {
                ok = true;
                break;
            }
    }
    free(gbuf);
    free(gids);
    return ok;
}
