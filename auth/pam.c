/* auth/pam.c — one PAM transaction per login attempt (see pam.md §0/§1).
 *
 * Runs in a helper worker process: blocking is fine here, the network
 * process never waits on it.  No pam_setcred/pam_open_session/pam_chauthtok:
 * nothing runs as the user. */
#include "auth/auth_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <security/pam_appl.h>

/* The conversation: answer every PAM_PROMPT_ECHO_OFF with the password we
 * were given, refuse PAM_PROMPT_ECHO_ON (we never ask the viewer for more),
 * ignore PAM_TEXT_INFO / PAM_ERROR_MSG.  Replies are calloc/strdup'ed
 * because libpam frees them; on failure everything allocated so far is
 * wiped and freed. */
static int auth_pam_conv(int n, const struct pam_message **msg, struct pam_response **resp,
                         void *appdata)
{
    const char *password = appdata;
    if (n <= 0 || n > PAM_MAX_NUM_MSG || !msg || !resp)
        return PAM_CONV_ERR;
    struct pam_response *r = calloc((size_t)n, sizeof *r);
    if (!r)
        return PAM_BUF_ERR;
    for (int i = 0; i < n; i++) {
        switch (msg[i]->msg_style) {
        case PAM_PROMPT_ECHO_OFF:
            if (!(r[i].resp = strdup(password ? password : "")))
                goto fail;
            break;
        case PAM_TEXT_INFO:
        case PAM_ERROR_MSG:
            break;
        case PAM_PROMPT_ECHO_ON:
        default:
            goto fail;
        }
    }
    *resp = r;
    return PAM_SUCCESS;
fail:
    for (int j = 0; j < n; j++) {
        if (r[j].resp) {
            explicit_bzero(r[j].resp, strlen(r[j].resp));
            free(r[j].resp);
        }
    }
    free(r);
    return PAM_CONV_ERR;
}

/* PAM_FAIL_DELAY callback that does nothing: the gateway delays failures
 * itself, on a timer, so a PAM module's sleep must not hold the worker. */
static void auth_pam_no_delay(int retval, unsigned usec_delay, void *appdata)
{
    (void)retval;
    (void)usec_delay;
    (void)appdata;
}

/* Result of pam_authenticate() as a protocol result. */
static enum authp_result map_authenticate(int rc)
{
    switch (rc) {
    case PAM_SUCCESS:           return AUTHP_OK;
    case PAM_USER_UNKNOWN:      return AUTHP_UNKNOWN_USER;
    case PAM_AUTH_ERR:
    case PAM_CRED_INSUFFICIENT:
    case PAM_MAXTRIES:          return AUTHP_BAD_PASSWORD;
    case PAM_PERM_DENIED:
    case PAM_ACCT_EXPIRED:
    case PAM_NEW_AUTHTOK_REQD:  return AUTHP_ACCOUNT;
    default:                    return AUTHP_ERROR;  /* AUTHINFO_UNAVAIL, CONV_ERR, ... */
    }
}

/* Result of pam_acct_mgmt() as a protocol result. */
static enum authp_result map_acct(int rc)
{
    switch (rc) {
    case PAM_SUCCESS:           return AUTHP_OK;
    case PAM_USER_UNKNOWN:      return AUTHP_UNKNOWN_USER;
    case PAM_NEW_AUTHTOK_REQD:
    case PAM_ACCT_EXPIRED:
    case PAM_PERM_DENIED:
    case PAM_AUTH_ERR:          return AUTHP_ACCOUNT;
    default:                    return AUTHP_ERROR;
    }
}

enum authp_result auth_pam_check(const char *service, const char *user, const char *password,
                                 const char *rhost, char *detail, size_t detaillen)
{
    if (detail && detaillen)
        detail[0] = '\0';
    if (!service || !*service || !user || !password) {
        if (detail && detaillen)
            snprintf(detail, detaillen, "pam: no service or user");
        return AUTHP_ERROR;
    }

    /* The conversation reads the password through appdata; it is only
     * duplicated into PAM's own replies, which libpam frees. */
    struct pam_conv conv = { .conv = auth_pam_conv, .appdata_ptr = (void *)password };
    pam_handle_t *h = NULL;
    int rc = pam_start(service, user, &conv, &h);
    if (rc != PAM_SUCCESS || !h) {
        if (detail && detaillen)
            snprintf(detail, detaillen, "pam_start: %s (code %d)",
                     h ? pam_strerror(h, rc) : "failed", rc);
        if (h)
            pam_end(h, rc);
        return AUTHP_ERROR;
    }

    enum authp_result res = AUTHP_ERROR;
    const char *step = "pam_set_item";
    if (rhost && *rhost && (rc = pam_set_item(h, PAM_RHOST, rhost)) != PAM_SUCCESS)
        goto out;
    if ((rc = pam_set_item(h, PAM_TTY, "vmgate")) != PAM_SUCCESS)
        goto out;
    /* pam_set_item takes the callback as an untyped item pointer. */
    if ((rc = pam_set_item(h, PAM_FAIL_DELAY, (const void *)(uintptr_t)auth_pam_no_delay))
        != PAM_SUCCESS)
        goto out;

    step = "pam_authenticate";
    rc = pam_authenticate(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
    res = map_authenticate(rc);
    if (res != AUTHP_OK)
        goto fail;

    step = "pam_acct_mgmt";
    rc = pam_acct_mgmt(h, PAM_SILENT);
    res = map_acct(rc);
    if (res != AUTHP_OK)
        goto fail;
    pam_end(h, PAM_SUCCESS);
    return AUTHP_OK;

out:
    res = AUTHP_ERROR;
fail:
    if (detail && detaillen)
        snprintf(detail, detaillen, "%s: %s (code %d)", step, pam_strerror(h, rc), rc);
    pam_end(h, rc);
    return res;
}
